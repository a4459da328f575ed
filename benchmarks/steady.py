"""Steady state of the default configuration: a function called over and over, as an
integrator, an optimiser or a service calls it. Each suite case is called repeatedly for
``SECONDS`` with the default ``CompileConfig()`` (adaptive) and with each fixed tier, at
1e3, 1e5 and 1e7 points, both fresh and after 300,000 scalar calls (the use that left a
function on Cranelift before), with the process on all cores and pinned to one. A cell is
the throughput (points per second) over the last half second; auto should reach at least
0.9 of the best fixed tier's.

    python benchmarks/run.py --only steady
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Dict, List

import numpy as np

import alkahest as ak
from alkahest.dispatch import wait_for_tier_ups

SIZES = (1_000, 100_000, 10_000_000)
SECONDS = 2.0
TAIL = 0.5
SCALAR_CALLS = 300_000


def _throughput(f: ak.CompiledFn, arrays: List[np.ndarray], n: int) -> float:
    """Points per second over the last ``TAIL`` seconds of ``SECONDS`` of calls."""
    start = time.perf_counter()
    stamps = []
    while True:
        ak.numpy_eval(f, *arrays)
        now = time.perf_counter()
        stamps.append(now)
        if now - start >= SECONDS and len(stamps) >= 3:
            break
    cut = stamps[-1] - TAIL
    tail = [t for t in stamps if t >= cut]
    if len(tail) < 2:  # calls longer than the tail: the last call alone
        return n / (stamps[-1] - stamps[-2])
    return n * (len(tail) - 1) / (tail[-1] - tail[0])


def steady_table(cases) -> List[Dict[str, Any]]:
    rows = []
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    placements = [("all cores", cores)] + ([("one core", cores[:1])] if len(cores) > 1 else [])
    rng = np.random.default_rng(9)
    try:
        for placement, cpus in placements:
            if cpus:
                os.sched_setaffinity(0, cpus)
            for case in cases:
                for n in SIZES:
                    arrays = case.inputs(rng, n)
                    point = [float(a[0]) for a in arrays]
                    for history in ("fresh", "after scalar calls"):
                        row: Dict[str, Any] = {"case": case.name, "n": n, "history": history, "placement": placement}
                        for tier in ("auto",) + tuple(ak.AVAILABLE_TIERS):
                            expr, vars = case.build(ak.ExprPool())
                            config = ak.CompileConfig(cache_dir=False) if tier == "auto" else \
                                ak.CompileConfig(tier=tier, cache_dir=False)
                            f = ak.compile_expr(expr, vars, config, cache=False)
                            if history != "fresh":
                                for _ in range(SCALAR_CALLS):
                                    f(*point)
                                wait_for_tier_ups(timeout=120)
                            row[tier] = _throughput(f, arrays, n)
                            if tier == "auto":
                                row["auto_tier"] = f.tier
                            del f
                            wait_for_tier_ups(timeout=120)
                        best = max(row[t] for t in ak.AVAILABLE_TIERS)
                        row["ratio"] = row["auto"] / best
                        rows.append(row)
                        print(f"  {placement:9s} {case.name:15s} n={n:<9.0e} {history:19s} auto/best "
                              f"{row['ratio']:.2f} ({row['auto_tier']})", file=sys.stderr)
    finally:
        if cores:
            os.sched_setaffinity(0, cores)
    return rows


def markdown(rows) -> str:
    tiers = list(ak.AVAILABLE_TIERS)
    lines = ["| placement | case | n | history | " + " | ".join(f"{t} (Mpt/s)" for t in tiers) +
             " | auto (Mpt/s) | auto ended on | auto / best |", "|" + "---|" * (len(tiers) + 7)]
    for r in rows:
        cells = " | ".join(f"{r[t] / 1e6:.1f}" for t in tiers)
        lines.append(f"| {r['placement']} | {r['case']} | {r['n']:.0e} | {r['history']} | {cells} | "
                     f"{r['auto'] / 1e6:.1f} | {r['auto_tier']} | {r['ratio']:.2f} |")
    ok = sum(r["ratio"] >= 0.9 for r in rows)
    worst = min(rows, key=lambda r: r["ratio"])
    lines += ["", f"auto reached at least 0.9 of the best fixed tier in {ok} of {len(rows)} cells; the worst: "
              f"{worst['case']} at {worst['n']:.0e} points ({worst['history']}, {worst['placement']}), "
              f"{worst['ratio']:.2f}."]
    return "\n".join(lines)
