"""Benchmark runner: alkahest's tiers against NumPy and numexpr, in one run.

    ./dev.sh bench                       # full suite at 1e3, 1e5, 1e6, 1e7 points
    ./dev.sh bench --sizes 1e6 --cases where,axpy
    ./dev.sh bench --out benchmarks/results/mine.json

Times are the best of several repeats (each repeat long enough to time reliably);
ratios are peer time / alkahest time, so > 1 means alkahest is faster. Every engine's
result is checked against NumPy's before it is timed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import alkahest as ak  # noqa: E402
from engines import engines, machine  # noqa: E402
from suite import SUITE, dag_expr, scalar_case  # noqa: E402


def best_time(fn, budget: float) -> float:
    """Best per-call time over repeats of a loop that runs at least ~budget/5 seconds."""
    fn()
    number = 1
    while True:
        t = timeit.timeit(fn, number=number)
        if t >= budget / 5 or number >= 1 << 20:
            break
        number *= 4
    repeats = max(3, min(7, int(budget / max(t, 1e-9))))
    return min(timeit.repeat(fn, number=number, repeat=repeats)) / number


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


def compile_times(cases, repeat=50):
    out = {}
    sources = [(c.name, c.build) for c in cases] + [("dag100", lambda p: dag_expr(p, 58))]
    for name, build in sources:
        for tier in ak.AVAILABLE_TIERS:
            samples, ops = [], 0
            for _ in range(repeat):
                expr, vars = build(ak.ExprPool())  # fresh pool: nothing cached
                t0 = time.perf_counter()
                f = ak.compile_expr(expr, vars, ak.CompileConfig(tier=tier), cache=False)
                samples.append(time.perf_counter() - t0)
                ops = f.tape.n_ops
            out[f"{name}/{tier}"] = {"median_seconds": statistics.median(samples), "ops": ops}
    return out


def scalar_call_times():
    expr, vars, py = scalar_case(ak.ExprPool())
    out = {}
    for tier in ak.AVAILABLE_TIERS:
        f = ak.compile_expr(expr, vars, ak.CompileConfig(tier=tier), cache=False)
        for label, stmt in (("positional", lambda: f(3.0, 0.5)), ("list", lambda: f([3.0, 0.5]))):
            per = [t / 100_000 for t in timeit.repeat(stmt, number=100_000, repeat=7)]
            out[f"{tier}/{label}"] = statistics.median(per)
    per = [t / 100_000 for t in timeit.repeat(lambda: py(3.0, 0.5), number=100_000, repeat=7)]
    out["python-math/positional"] = statistics.median(per)
    return out


def table(rows):
    """Per case and size: each engine's time and every ratio against alkahest's tiers."""
    by = {}
    for r in rows:
        by.setdefault((r["case"], r["n"]), {})[(r["engine"], r["threads"])] = r["seconds"]
    engines_seen = sorted({(r["engine"], r["threads"]) for r in rows}, key=lambda e: (not e[0].startswith("alkahest"), e))
    heads = [f"{e}/{t}t" for e, t in engines_seen]
    lines = ["| case | n | " + " | ".join(f"{h} ms" for h in heads) + " | numpy / alk-1t | numexpr-1t / alk-1t | alk 1t / alk all |",
             "|" + "---|" * (len(heads) + 5)]
    t_all = max(t for _, t in engines_seen)
    for (case, n), times in by.items():
        cells = [f"{times[e] * 1e3:.3f}" if e in times else "—" for e in engines_seen]
        alk1 = times.get(("alkahest-interpreter", 1))
        alkn = times.get(("alkahest-interpreter", t_all))
        npy, ne1 = times.get(("numpy", 1)), times.get(("numexpr", 1))
        ratio = lambda a, b: f"{a / b:.2f}" if a and b else "—"  # noqa: E731
        lines.append(f"| {case} | {n:.0e} | " + " | ".join(cells) + f" | {ratio(npy, alk1)} | {ratio(ne1, alk1)} | {ratio(alk1, alkn)} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1e3,1e5,1e6,1e7", help="comma-separated point counts")
    ap.add_argument("--cases", default=",".join(c.name for c in SUITE), help="comma-separated case names")
    ap.add_argument("--budget", type=float, default=0.5, help="seconds of timing per measurement (roughly)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "latest.json"))
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    wanted = args.cases.split(",")
    cases = [c for c in SUITE if c.name in wanted]
    unknown = set(wanted) - {c.name for c in SUITE}
    if unknown:
        ap.error(f"unknown cases: {', '.join(sorted(unknown))}")

    info = machine()
    print(f"machine: {info}", file=sys.stderr)
    rows = bulk(cases, sizes, args.budget)
    comp = compile_times(cases)
    scal = scalar_call_times()

    print("\n## Bulk evaluation (best-of times; ratios > 1 mean alkahest is faster)\n")
    print(table(rows))
    print("\n## Compile time (median, expression to callable)\n")
    print("| expression | tier | ops | ms |\n|---|---|---|---|")
    for key, v in comp.items():
        name, tier = key.split("/")
        print(f"| {name} | {tier} | {v['ops']} | {v['median_seconds'] * 1e3:.3f} |")
    print("\n## Scalar call of x**2 + sin(y) from Python (median)\n")
    print("| callable | ns per call |\n|---|---|")
    for key, v in scal.items():
        print(f"| {key} | {v * 1e9:.0f} |")

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": info, "bulk": rows, "compile": comp, "scalar_call_seconds": scal}, indent=1))
    print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
