"""The "optimize" section: ``alkahest.optimize`` on FPBench's Hamming and Herbie
benchmarks (accuracy) and on the suite's 500-op DAG and a SymPy model (speed).

Accuracy: each FPCore benchmark is optimised with ``goal="accuracy"`` on 256 sampled
points (its precondition's bounds as the domain, the whole precondition as a filter),
then the original and the result are both measured on 1,024 *other* points (Herbie's
metric: average bits of error, ``log2(1 + ulps)`` against mpmath's exact value).

Speed: ops before and after, one-thread bulk time per point before and after on the
LLVM tier (10^5 points), the optimisation's time, and the LLVM compile time it precedes.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Dict, List

import numpy as np

import alkahest as ak
from fpcore import benchmarks
from timing import best_time


def accuracy_rows() -> List[Dict[str, Any]]:
    rows = []
    for b in benchmarks():
        pool = ak.ExprPool()
        expr, vars = b.build(pool)
        domain, pre = b.domain(), b.precondition()
        start = time.perf_counter()
        better, report = ak.optimize(expr, vars, "accuracy", domain, precondition=pre)
        seconds = time.perf_counter() - start
        try:
            before = ak.optimizer.measure_error(expr, vars, domain, precondition=pre)
            after = ak.optimizer.measure_error(better, vars, domain, precondition=pre)
        except ak.ArgumentError as e:
            print(f"  {b.name}: not measured ({e})", file=sys.stderr)
            continue
        row = {"name": b.name, "before_bits": before[0], "after_bits": after[0], "before_worst": before[1],
               "after_worst": after[1], "ops_before": report.ops_before, "ops_after": report.ops_after,
               "kept": all(report.kept), "seconds": seconds, "rules": sorted(report.rules), "result": str(better)}
        rows.append(row)
        print(f"  {b.name:40s} {before[0]:6.2f} -> {after[0]:6.2f} bits  {seconds:6.2f} s  {better}", file=sys.stderr)
    return rows


def speed_rows() -> List[Dict[str, Any]]:
    from models import pendulum_on_cart
    from suite import dag_expr

    cases = []
    pool = ak.ExprPool()
    expr, vars = dag_expr(pool, 292)
    cases.append(("dag500", [expr], vars))
    name, args, outputs = pendulum_on_cart(3)
    pool = ak.ExprPool()
    converted = ak.from_sympy(outputs, pool)
    cases.append((name, list(converted), [ak.from_sympy(a, pool) for a in args]))
    rows = []
    rng = np.random.default_rng(3)
    for name, exprs, vars in cases:
        # The domain the timing samples: the rewrite is checked where it will be used.
        domain = {v: (0.1, 0.9) for v in vars}
        # Best of three, as the LLVM compile it is compared with runs warm (LLVM started).
        opt_s = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            better, report = ak.optimize(exprs, vars, "speed", domain)
            opt_s = min(opt_s, time.perf_counter() - start)
        arrays = [rng.uniform(0.1, 0.9, 10**5) for _ in vars]
        times, compile_s = [], 0.0
        for version in (exprs, better):
            t0 = time.perf_counter()
            f = ak.compile_expr(version, vars, ak.CompileConfig(tier="llvm", cache_dir=False), cache=False)
            compile_s = time.perf_counter() - t0
            times.append(best_time(lambda: ak.numpy_eval(f, *arrays), 0.5) / 10**5)
        rows.append({"case": name, "ops_before": report.ops_before, "ops_after": report.ops_after,
                     "kept": f"{sum(report.kept)}/{len(report.kept)}", "bits_before": report.bits_before,
                     "bits_after": report.bits_after,
                     "ns_per_point_before": times[0] * 1e9, "ns_per_point_after": times[1] * 1e9,
                     "optimize_s": opt_s, "llvm_compile_s": compile_s, "rules": dict(report.rules)})
        print(f"  {name}: {report.ops_before} -> {report.ops_after} ops, {times[0] * 1e9:.1f} -> {times[1] * 1e9:.1f} ns/pt, "
              f"optimize {opt_s * 1e3:.0f} ms, llvm compile {compile_s * 1e3:.0f} ms", file=sys.stderr)
    return rows


def rows() -> Dict[str, Any]:
    return {"accuracy": accuracy_rows(), "speed": speed_rows()}


def markdown(result: Dict[str, Any]) -> str:
    acc = result["accuracy"]
    lines = ["| benchmark | bits before | bits after | worst before | worst after | ops | optimise (s) | result |",
             "|---|---:|---:|---:|---:|---|---:|---|"]
    for r in acc:
        lines.append(f"| {r['name']} | {r['before_bits']:.2f} | {r['after_bits']:.2f} | {r['before_worst']:.1f} | "
                     f"{r['after_worst']:.1f} | {r['ops_before']} → {r['ops_after']} | {r['seconds']:.2f} | `{r['result']}` |")
    improved = [r for r in acc if r["after_bits"] < r["before_bits"] - 0.05]
    worse = [r for r in acc if r["after_bits"] > r["before_bits"] + 0.05]
    total_b, total_a = sum(r["before_bits"] for r in acc), sum(r["after_bits"] for r in acc)
    lines += ["", f"{len(acc)} benchmarks: {len(improved)} improved, {len(worse)} worse (by more than 0.05 bits), "
              f"average {total_b / max(len(acc), 1):.2f} -> {total_a / max(len(acc), 1):.2f} bits.", "",
              "| case | ops before → after | outputs rewritten | bits (avg) before → after | ns/point before → after (LLVM, 1e5) "
              "| optimise (ms) | LLVM compile (ms) |",
              "|---|---|---|---|---|---:|---:|"]
    for r in result["speed"]:
        bits = (f"{r['bits_before'][0]:.2f} → {r['bits_after'][0]:.2f}" if r.get("bits_before") else "—")
        lines.append(f"| {r['case']} | {r['ops_before']} → {r['ops_after']} | {r.get('kept', '—')} | {bits} | "
                     f"{r['ns_per_point_before']:.1f} → {r['ns_per_point_after']:.1f} | {r['optimize_s'] * 1e3:.0f} | "
                     f"{r['llvm_compile_s'] * 1e3:.0f} |")
    return "\n".join(lines)
