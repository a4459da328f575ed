"""Benchmark runner: alkahest's tiers against NumPy, numexpr and numba, in one run.

    ./dev.sh bench                       # full suite at 1e3, 1e5, 1e6, 1e7 points
    ./dev.sh bench --sizes 1e6 --cases where,axpy
    ./dev.sh bench --out benchmarks/results/mine.json
    ./dev.sh bench --only dispatch       # just the auto-versus-fixed-tier table
    ./dev.sh bench --only threads        # just the LLVM tier's two-thread scaling at 1e7
    ./dev.sh bench --only sympy          # SymPy models: lambdify against SymPy, symengine, symjit
    ./dev.sh bench --only strings        # evaluate() against numexpr.evaluate on the suite
    ./dev.sh bench --only latency        # small calls: fixed cost, against NumPy and numba @vectorize
    ./dev.sh bench --only steady         # auto's steady-state throughput against each fixed tier
    ./dev.sh bench --only derivatives    # Jacobians, gradients, stiff ODEs and quad against SymPy, symengine, symjit
    ./dev.sh bench --only dask           # Dask LocalCluster at 1e8 points against NumPy/numexpr map_blocks; pickles
    ./dev.sh bench --only powers         # what exact integer powers cost: default vs fastmath vs numexpr, numba
    ./dev.sh bench --only outputs        # scalar call of 342 outputs: tuple, array, out= against symengine
    ./dev.sh bench --only background     # what the caller loses while a tier compiles in the background
    ./dev.sh bench --only large          # compile time against tape size (10^3 to 10^5 ops), per tier, results and predictions checked
    ./dev.sh bench --only cse            # tape length against sympy.cse on SymPy multibody models (exact and fastmath)
    ./dev.sh bench --only dispatch_large # auto against each fixed tier on generated models of 10^3 to 2.4*10^4 ops
    ./dev.sh bench --only float32        # the suite on float32 inputs: alkahest f32 vs f64, NumPy, numexpr, numba in f32
    ./dev.sh bench --only optimize       # alkahest.optimize: FPBench bits of error before/after; speed on the DAG and a model

Times are the best of several repeats (each repeat long enough to time reliably);
ratios are peer time / alkahest time, so > 1 means alkahest is faster. Every engine's
result is checked against NumPy's before it is timed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

# OpenBLAS's idle worker spins on one of the cores and adds noise to every engine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

import alkahest as ak  # noqa: E402
from dispatch import dispatch_table, markdown, model_accuracy, summary  # noqa: E402
from engines import engines, machine  # noqa: E402
from timing import best_time  # noqa: E402
from suite import SUITE, dag_expr, scalar_case  # noqa: E402

DAG_10K_STEPS = 5850  # steps of the generated DAG that make ~10,000 operations


def check(name, got, want, case):
    got = np.asarray(got)
    scale = np.maximum(np.abs(want), 1.0)
    err = float(np.nanmax(np.abs(got - want) / scale)) if want.size else 0.0
    if not (err <= 1e-9) or not np.array_equal(np.isnan(got), np.isnan(want)):
        raise SystemExit(f"{name} gives wrong results on {case}: max scaled error {err:.3g}")


def bulk(cases, sizes, budget):
    rows = []
    engs = engines()
    rng = np.random.default_rng(42)
    for case in cases:
        runners = [(e, e.prepare(case)) for e in engs]
        for n in sizes:
            arrays = case.inputs(rng, n)
            want = case.numpy(*arrays)
            for eng, run in runners:
                if run is None:
                    continue
                check(eng.name, run(arrays), want, case.name)
                sec = best_time(lambda: run(arrays), budget)
                rows.append({"case": case.name, "n": n, "engine": eng.name, "threads": eng.threads, "seconds": sec})
                print(f"  {case.name:15s} n={n:<9.0e} {eng.name:22s} t={eng.threads} {sec * 1e3:10.3f} ms", file=sys.stderr)
    return rows


def compile_times(cases, repeat=30):
    """Median time from expression to callable, every tier, no cache of any kind."""
    out = {}
    sources = [(c.name, c.build, repeat) for c in cases] + [
        ("dag100", lambda p: dag_expr(p, 58), repeat),
        ("dag10k", lambda p: dag_expr(p, DAG_10K_STEPS), 3),
    ]
    for name, build, times in sources:
        for tier in ak.AVAILABLE_TIERS:
            samples, ops = [], 0
            for _ in range(times):
                expr, vars = build(ak.ExprPool())  # fresh pool: nothing cached
                t0 = time.perf_counter()
                f = ak.compile_expr(expr, vars, ak.CompileConfig(tier=tier, cache_dir=False), cache=False)
                samples.append(time.perf_counter() - t0)
                ops = f.tape.n_ops
                assert f.tier == tier, f.fallback_reason
            out[f"{name}/{tier}"] = {"median_seconds": statistics.median(samples), "ops": ops}
    return out


# One process compiles the 500-op DAG with the disk cache in argv[1]; it prints the
# seconds taken and whether the code came from the cache. LLVM is initialised first (a
# one-off cost of every process, cached or not).
_CACHE_CHILD = """
import sys, time
sys.path.insert(0, {bench!r})
import alkahest as ak
from suite import dag_expr
p = ak.ExprPool(); q = p.symbol("q")
ak.compile_expr(q + 1, [q], ak.CompileConfig(tier="llvm", cache_dir=False), cache=False)
expr, vars = dag_expr(ak.ExprPool(), 292)
t0 = time.perf_counter()
f = ak.compile_expr(expr, vars, ak.CompileConfig(tier="llvm", cache_dir=sys.argv[1]), cache=False)
print(time.perf_counter() - t0, f.backend.loaded_from_cache)
"""


def thread_scaling(cases, n=10**7, rounds=7):
    """The LLVM tier's two-thread speed-up at ``n`` points, with fresh outputs (what
    ``numpy_eval`` allocates) and with a preallocated ``out=``: the difference is the cost
    of first-touching the fresh output's pages. The four variants take turns."""
    if "llvm" not in ak.AVAILABLE_TIERS:
        return {}
    threads = ak._native.default_threads()
    rng = np.random.default_rng(7)
    rows = {}
    for case in cases:
        expr, vars = case.build(ak.ExprPool())
        f = ak.compile_expr(expr, vars, ak.CompileConfig(tier="llvm", cache_dir=False), cache=False)
        arrays = case.inputs(rng, n)
        out = np.empty(n)
        out[:] = 0.0  # faulted in once, before timing
        runs = {
            "fresh 1t": lambda: ak.numpy_eval(f, *arrays),
            f"fresh {threads}t": lambda: ak.numpy_eval_par(f, *arrays, threads=threads),
            "out= 1t": lambda: ak.numpy_eval(f, *arrays, out=out),
            f"out= {threads}t": lambda: ak.numpy_eval_par(f, *arrays, out=out, threads=threads),
        }
        best = {k: float("inf") for k in runs}
        for _ in range(rounds):
            for k, run in runs.items():
                t0 = time.perf_counter()
                run()
                best[k] = min(best[k], time.perf_counter() - t0)
        rows[case.name] = best
        print(f"  {case.name:15s} n={n:.0e} llvm " + "  ".join(f"{k} {v * 1e3:.2f} ms" for k, v in best.items()),
              file=sys.stderr)
    return {"n": n, "threads": threads, "seconds": rows}


def disk_cache_times(rounds=5):
    """Median seconds to get the 500-op DAG in a fresh process: compiled (empty cache) and
    loaded from the LLVM tier's disk cache (written by the previous process)."""
    if "llvm" not in ak.AVAILABLE_TIERS:
        return {}
    code = _CACHE_CHILD.format(bench=str(Path(__file__).parent))
    compiled, loaded = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as d:
            for bucket, want in ((compiled, "False"), (loaded, "True")):
                out = subprocess.run([sys.executable, "-c", code, d], capture_output=True, text=True, check=True)
                sec, hit = out.stdout.split()
                assert hit == want, out.stdout
                bucket.append(float(sec))
    return {"compile_seconds": statistics.median(compiled), "load_seconds": statistics.median(loaded)}


def scalar_call_times():
    expr, vars, py = scalar_case(ak.ExprPool())
    out = {}
    for tier in ak.AVAILABLE_TIERS:
        f = ak.compile_expr(expr, vars, ak.CompileConfig(tier=tier, cache_dir=False), cache=False)
        for label, stmt in (("positional", lambda: f(3.0, 0.5)), ("list", lambda: f([3.0, 0.5]))):
            per = [t / 100_000 for t in timeit.repeat(stmt, number=100_000, repeat=7)]
            out[f"{tier}/{label}"] = statistics.median(per)
    per = [t / 100_000 for t in timeit.repeat(lambda: py(3.0, 0.5), number=100_000, repeat=7)]
    out["python-math/positional"] = statistics.median(per)
    return out


PEERS = ("numpy", "numexpr", "numba")


def tables(rows):
    """Times of every engine; then ratios, one thread: each peer's time over each alkahest
    tier's, the interpreter's over each native tier's; then all threads: each tier's
    speed-up over its one-thread time and each multi-threaded peer's time over the tier's."""
    by = {}
    for r in rows:
        by.setdefault((r["case"], r["n"]), {})[(r["engine"], r["threads"])] = r["seconds"]
    engines_seen = sorted({(r["engine"], r["threads"]) for r in rows}, key=lambda e: (not e[0].startswith("alkahest"), e))
    t_all = max(t for _, t in engines_seen)
    tiers = [e for e, t in engines_seen if e.startswith("alkahest") and t == 1]
    peers = [p for p in PEERS if any(e == p for e, _ in engines_seen)]
    par_peers = [p for p in peers if (p, t_all) in engines_seen and t_all > 1]
    heads = [f"{e} {t}t" for e, t in engines_seen]

    def header(cols):
        return ["| case | n | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 2)]

    times = header([f"{h} (ms)" for h in heads])
    one_heads, par_heads = [], []
    for tier in tiers:
        short = tier.removeprefix("alkahest-")
        one_heads += [f"{p} / {short}" for p in peers]
        if tier != "alkahest-interpreter":
            one_heads.append(f"interpreter / {short}")
        par_heads += [f"{short} 1t / {t_all}t"] + [f"{p} {t_all}t / {short} {t_all}t" for p in par_peers]
    one, par = header(one_heads), header(par_heads)

    def ratio(a, b):
        return f"{a / b:.2f}" if a and b else "—"

    for (case, n), t in by.items():
        cells = [f"{t[e] * 1e3:.3f}" if e in t else "—" for e in engines_seen]
        times.append(f"| {case} | {n:.0e} | " + " | ".join(cells) + " |")
        oc, pc = [], []
        for tier in tiers:
            mine, mine_par = t.get((tier, 1)), t.get((tier, t_all))
            oc += [ratio(t.get((p, 1)), mine) for p in peers]
            if tier != "alkahest-interpreter":
                oc.append(ratio(t.get(("alkahest-interpreter", 1)), mine))
            pc += [ratio(mine, mine_par)] + [ratio(t.get((p, t_all)), mine_par) for p in par_peers]
        one.append(f"| {case} | {n:.0e} | " + " | ".join(oc) + " |")
        par.append(f"| {case} | {n:.0e} | " + " | ".join(pc) + " |")
    return "\n".join(times), "\n".join(one), "\n".join(par)


#: Sections in a module of their own name with ``rows()`` and ``markdown(rows)``: title.
ROW_SECTIONS = {
    "powers": "Integer powers: exact (default) against fastmath's plain chain",
    "outputs": "Many outputs: tuple, array or out=",
    "background": "What a caller loses during a background compile",
    "large": "Compile time against tape size, per tier",
    "cse": "Tape length against sympy.cse on multibody models",
    "dispatch_large": "Tier dispatch on large models: auto against each fixed tier",
    "float32": "float32: alkahest in float32 against float64 and against the peers on float32 inputs",
    "optimize": "The e-graph optimiser: FPBench accuracy and speed on the suite's DAG and a SymPy model",
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1e3,1e5,1e6,1e7", help="comma-separated point counts")
    ap.add_argument("--cases", default=",".join(c.name for c in SUITE), help="comma-separated case names")
    ap.add_argument("--budget", type=float, default=0.5, help="seconds of timing per measurement (roughly)")
    ap.add_argument("--out", default=None, help="JSON results (default benchmarks/results/latest.json, "
                    "or dispatch.json with --only dispatch)")
    ap.add_argument("--only", choices=["dispatch", "threads", "sympy", "strings", "latency", "steady", "derivatives", "dask",
                                       "powers", "outputs", "background", "large", "cse", "dispatch_large", "float32", "optimize"],
                    help="run one section only")
    args = ap.parse_args(argv)
    results = Path(__file__).parent / "results"
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    wanted = args.cases.split(",")
    cases = [c for c in SUITE if c.name in wanted]
    unknown = set(wanted) - {c.name for c in SUITE}
    if unknown:
        ap.error(f"unknown cases: {', '.join(sorted(unknown))}")

    info = machine()
    print(f"machine: {info}", file=sys.stderr)
    if args.only == "threads":
        print_thread_scaling(thread_scaling(cases))
        return
    def write(name: str, payload: dict, title: str = "", text: str = "") -> None:
        """Prints a section's tables (if any) and writes its JSON beside the others."""
        if title:
            print(f"\n## {title}\n")
            print(text)
        out = Path(args.out or results / f"{name}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"machine": info, **payload}, indent=1))
        print(f"\nwrote {out}", file=sys.stderr)

    if args.only == "derivatives":
        from derivatives import markdown as derivatives_markdown
        from derivatives import section as derivatives_section
        from models import pendulum_on_cart

        result = derivatives_section([pendulum_on_cart(5)], args.budget)
        write("derivatives", result, "Derivatives", derivatives_markdown(result))
        return
    if args.only in ROW_SECTIONS:
        # Sections whose module gives rows() and markdown(rows): run, print, write.
        title = ROW_SECTIONS[args.only]
        module = importlib.import_module(args.only)
        result = module.rows()
        write(args.only, {args.only: result}, title, module.markdown(result))
        return
    if args.only == "dask":
        from scaleout import markdown as scaleout_markdown
        from scaleout import section as scaleout_section

        result = scaleout_section()
        write("dask", result, "Scale-out and pickles", scaleout_markdown(result))
        return
    if args.only == "steady":
        from steady import markdown as steady_markdown
        from steady import steady_table

        rows = steady_table(cases)
        write("steady", {"steady": rows}, "Tier dispatch in steady state: throughput over the last half second of 2 s of calls",
              steady_markdown(rows))
        return
    if args.only == "latency":
        write("latency", latency_section(cases))
        return
    if args.only in ("sympy", "strings"):
        section = front_doors(cases, args.budget, sympy=args.only == "sympy", strings=args.only == "strings")
        write(args.only, section)
        return
    disp = dispatch_table(cases)
    if args.only == "dispatch":
        print_dispatch(disp)
        write("dispatch", {"dispatch": disp})
        return
    rows = bulk(cases, sizes, args.budget)
    scaling = thread_scaling(cases)
    comp = compile_times(cases)
    disk = disk_cache_times()
    scal = scalar_call_times()
    doors = front_doors(cases, args.budget)
    small = latency_section(cases)

    times, one, par = tables(rows)
    print("\n## Bulk evaluation: times (best of repeats)\n")
    print(times)
    print("\n## Bulk evaluation: ratios, one thread (> 1 means the alkahest tier is faster)\n")
    print(one)
    print(f"\n## Bulk evaluation: ratios, {info['threads']} threads\n")
    print(par)
    print_thread_scaling(scaling)
    print("\n## Compile time (median, expression to callable)\n")
    print("| expression | tier | ops | ms |\n|---|---|---|---|")
    for key, v in comp.items():
        name, tier = key.split("/")
        print(f"| {name} | {tier} | {v['ops']} | {v['median_seconds'] * 1e3:.3f} |")
    if disk:
        print("\n## LLVM disk cache: the 500-op DAG in a fresh process (median)\n")
        print("| compiled (ms) | loaded from the cache (ms) | speed-up |\n|---|---|---|")
        print(f"| {disk['compile_seconds'] * 1e3:.2f} | {disk['load_seconds'] * 1e3:.2f} | "
              f"{disk['compile_seconds'] / disk['load_seconds']:.1f} |")
    print("\n## Scalar call of x**2 + sin(y) from Python (median)\n")
    print("| callable | ns per call |\n|---|---|")
    for key, v in scal.items():
        print(f"| {key} | {v * 1e9:.0f} |")

    print_dispatch(disp)

    out = Path(args.out or results / "latest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": info, "bulk": rows, "compile": comp, "disk_cache": disk,
                               "scalar_call_seconds": scal, "dispatch": disp, "thread_scaling": scaling, **doors, **small},
                              indent=1))
    print(f"\nwrote {out}", file=sys.stderr)


def latency_section(cases):
    """Small calls: fixed cost over the kernel, against NumPy and numba (printed)."""
    from latency import latency, markdown, scalar_call

    rows, scalar = latency(cases), scalar_call()
    print("\n## Latency: small calls on the LLVM tier, one thread\n")
    print(markdown(rows, scalar))
    return {"latency": rows, "latency_scalar_call_seconds": scalar}


def front_doors(cases, budget, sympy=True, strings=True):
    """The "from SymPy" and "strings" sections (printed as tables); their rows for the JSON."""
    out = {}
    if sympy:
        from frontdoor import conversion_rate, sympy_markdown, sympy_section
        from models import generated, pendulum_on_cart

        models = [pendulum_on_cart(5), pendulum_on_cart(8), generated(12_500)]
        rows, rates = sympy_section(models, budget), [conversion_rate(m) for m in models]
        print("\n## From SymPy: set-up (conversion + compile), scalar call of all outputs, 1e5-point batch (one thread)\n")
        print(sympy_markdown(rows, rates))
        out.update({"sympy": rows, "from_sympy_rate": rates})
    if strings:
        from frontdoor import strings_markdown, strings_section

        rows = strings_section(cases, budget=budget)
        print("\n## Strings: alkahest.evaluate against numexpr.evaluate, 1e6 points, one thread\n")
        print(strings_markdown(rows))
        out["strings"] = rows
    return out


def print_thread_scaling(scaling):
    if not scaling:
        return
    t = scaling["threads"]
    print(f"\n## LLVM tier: {t}-thread speed-up at {scaling['n']:.0e} points, fresh outputs and out= "
          "(best of rounds, the variants taking turns)\n")
    print(f"| case | fresh 1t (ms) | fresh {t}t (ms) | speed-up | out= 1t (ms) | out= {t}t (ms) | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for case, s in scaling["seconds"].items():
        f1, f2, o1, o2 = s["fresh 1t"], s[f"fresh {t}t"], s["out= 1t"], s[f"out= {t}t"]
        print(f"| {case} | {f1 * 1e3:.2f} | {f2 * 1e3:.2f} | {f1 / f2:.2f} | {o1 * 1e3:.2f} | {o2 * 1e3:.2f} | {o1 / o2:.2f} |")


def print_dispatch(rows):
    print("\n## Tier dispatch: auto against each fixed tier (compile + run, best of repeats)\n")
    print(markdown(rows))
    print(f"\n{summary(rows)}")
    print("\n## Cost model: predicted / measured total time per fixed tier\n")
    print(model_accuracy(rows))


if __name__ == "__main__":
    main()
