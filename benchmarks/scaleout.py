"""The "dask" section: scale-out and persistence.

* Dask on a ``LocalCluster`` (2 worker processes, 1 thread each, loopback): suite cases
  at 1e8 points in chunks of 2e6, alkahest's ``numpy_eval`` on Dask arrays against the
  same expression in NumPy and in numexpr through ``map_blocks``. The inputs are made
  and kept on the workers first; each run reduces the result with ``.sum()`` so only a
  number comes back. Reported: the first run (it includes each worker's compile) and the
  best of the following ones.
* Pickles of a compiled function (the 500-operation suite DAG): size, and the time to
  unpickle it in a fresh process, with an empty and with a warm LLVM disk cache, and in
  the process that already holds it.
"""

from __future__ import annotations

import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

import alkahest as ak
from suite import SUITE, dag_expr

CASES = ("transcendental", "where", "polynomial", "black_scholes")
N = 10**8
CHUNK = 2 * 10**6


def _numexpr_block(text: str, names):
    def run(*blocks):
        import numexpr

        return numexpr.evaluate(text, local_dict=dict(zip(names, blocks)))

    return run


def dask_rows(repeats: int = 3, n: int = N) -> List[Dict[str, Any]]:
    import dask.array as da
    import distributed

    rows = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        for case in [c for c in SUITE if c.name in CASES]:
            pool = ak.ExprPool()
            expr, vars = case.build(pool)
            rng = da.random.default_rng(7)
            inputs = [rng.uniform(lo, hi, n, chunks=CHUNK) for lo, hi in case.inputs.ranges]
            inputs = client.persist(inputs)
            distributed.wait(inputs)
            engines = {
                "alkahest": lambda: ak.numpy_eval(ak.compile_expr(expr, vars), *inputs),
                "numpy map_blocks": lambda: da.map_blocks(case.numpy, *inputs, dtype=np.float64),
                "numexpr map_blocks": lambda: da.map_blocks(_numexpr_block(case.numexpr, case.names), *inputs,
                                                            dtype=np.float64),
            }
            sums = {}
            for name, make in engines.items():
                client.run(ak.persist.clear)  # so the first run includes each worker's compile
                times = []
                for _ in range(repeats + 1):
                    start = time.perf_counter()
                    total = make().sum().compute()
                    times.append(time.perf_counter() - start)
                sums[name] = float(total)
                rows.append({"case": case.name, "n": n, "engine": name, "first_s": times[0], "best_s": min(times[1:])})
                print(f"  dask {case.name:15s} {name:20s} first {times[0]:.3f} s  best {min(times[1:]):.3f} s",
                      file=sys.stderr)
            ref = sums["numpy map_blocks"]
            for name, s in sums.items():
                if not abs(s - ref) <= 1e-9 * max(1.0, abs(ref)):
                    raise SystemExit(f"{name} disagrees with NumPy on {case.name}: sum {s!r} vs {ref!r}")
            client.cancel(inputs)
    return rows


_UNPICKLE_CHILD = """
import sys, time
t0 = time.perf_counter()
import alkahest as ak
t1 = time.perf_counter()
import pickle
data = open(sys.argv[1], "rb").read()
t2 = time.perf_counter()
f = pickle.loads(data)
f(0.1, 0.2)
t3 = time.perf_counter()
print(t3 - t2, t1 - t0, f.tier, getattr(f.backend, "loaded_from_cache", None))
"""


def pickle_rows(rounds: int = 5) -> Dict[str, Any]:
    expr, vars = dag_expr(ak.ExprPool(), 292)
    out: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d:
        for label, config in (("auto", ak.CompileConfig()),
                              ("llvm", ak.CompileConfig(tier="llvm", cache_dir=str(Path(d) / "cache")))):
            f = ak.compile_expr(expr, vars, config, cache=False)
            data = pickle.dumps(f)
            path = Path(d) / f"{label}.pkl"
            path.write_bytes(data)
            same = []
            for _ in range(rounds):
                start = time.perf_counter()
                pickle.loads(data)
                same.append(time.perf_counter() - start)
            row: Dict[str, Any] = {"ops": f.tape.n_ops, "bytes": len(data), "same_process_s": statistics.median(same)}
            cold, warm = [], []
            for _ in range(rounds):
                for bucket in (cold, warm):
                    if bucket is cold and label == "llvm":
                        for entry in (Path(d) / "cache").glob("*.o"):
                            entry.unlink()
                    done = subprocess.run([sys.executable, "-c", _UNPICKLE_CHILD, str(path)], capture_output=True,
                                          text=True, check=True)
                    secs, _import_s, tier, loaded = done.stdout.split()
                    assert tier == ("llvm" if label == "llvm" else "interpreter"), done.stdout
                    if label == "llvm":
                        assert loaded == str(bucket is warm), done.stdout
                    bucket.append(float(secs))
            row["fresh_process_cold_s"] = statistics.median(cold)
            row["fresh_process_warm_s"] = statistics.median(warm)
            out[label] = row
    return out


def section(dask: bool = True) -> Dict[str, Any]:
    result: Dict[str, Any] = {"pickle": pickle_rows()}
    if dask:
        result["dask"] = dask_rows()
    return result


def markdown(result: Dict[str, Any]) -> str:
    lines = ["### Pickles of a compiled function (500-op suite DAG)", "",
             "| config | ops | pickle bytes | unpickle, same process | fresh process, empty disk cache | fresh process, warm disk cache |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, r in result["pickle"].items():
        lines.append(f"| {label} | {r['ops']} | {r['bytes']} | {r['same_process_s'] * 1e6:.1f} µs | "
                     f"{r['fresh_process_cold_s'] * 1e3:.2f} ms | {r['fresh_process_warm_s'] * 1e3:.2f} ms |")
    if "dask" in result:
        lines += ["", f"### Dask LocalCluster (2 processes x 1 thread), {N:.0e} points, chunks of {CHUNK:.0e}", "",
                  "| case | engine | first run | best run | alkahest speed-up (best) |", "|---|---|---:|---:|---:|"]
        rows = result["dask"]
        for r in rows:
            ours = next(o for o in rows if o["case"] == r["case"] and o["engine"] == "alkahest")
            lines.append(f"| {r['case']} | {r['engine']} | {r['first_s']:.3f} s | {r['best_s']:.3f} s | "
                         f"{r['best_s'] / ours['best_s']:.2f}x |")
    return "\n".join(lines)
