"""How well ``tier="auto"`` chooses: total time (compile + run) of auto against every
fixed tier, for each suite case in bulk at several sizes and in scalar-call loops.

A cell is one fresh compile (no in-memory or disk cache) plus one ``numpy_eval`` over
``n`` points, or plus a Python loop of ``calls`` scalar calls. Auto gets no hint
(``CompileConfig()``): bulk calls decide from their size, loops tier up as they run.
Each configuration's time is the best of several back-to-back repeats, over two rounds
of all configurations; background tier-up compiles are waited for between repeats
(they count only while the repeat that started them runs).

    python benchmarks/run.py --only dispatch
"""

from __future__ import annotations

import sys
import time
from typing import Dict, List

import numpy as np

import alkahest as ak
from alkahest.costmodel import CostModel, Features
from alkahest.dispatch import wait_for_tier_ups

SIZES = (10, 1_000, 100_000, 10_000_000)
LOOPS = (1, 100, 100_000)
WITHIN = 1.25  # acceptance: auto within 1.25x of the best fixed tier ...
SHARE = 0.90  # ... in at least 90% of the cells
NEVER_WORSE = 2.0


def _settle() -> None:
    """Waits for background tier-up compiles so they do not slow the next repeat."""
    wait_for_tier_ups(timeout=60)


def _repeats(seconds: float) -> int:
    return 15 if seconds < 1e-3 else 7 if seconds < 0.05 else 3 if seconds < LONG else 1


#: A configuration whose run takes longer than this (seconds) is timed once after its
#: warm-up, in one round: its noise is small against its length, and large models'
#: compiles take many seconds.
LONG = 2.0


def _cell(expr, vars, work) -> Dict[str, float]:
    """Best total seconds of each configuration for one piece of ``work(f)``. Each
    configuration repeats back to back (what a steady use looks like: caches warm with
    its own code), and the whole round runs twice, so a slow spell of the machine is
    unlikely to hit one configuration in both."""
    configs = {t: ak.CompileConfig(tier=t, cache_dir=False) for t in ak.AVAILABLE_TIERS}
    configs["auto"] = ak.CompileConfig(cache_dir=False)
    tiers = {}

    def run(name):
        t0 = time.perf_counter()
        f = ak.compile_expr(expr, vars, configs[name], cache=False)
        work(f)
        elapsed = time.perf_counter() - t0
        _settle()
        tiers[name] = f.tier
        return elapsed

    best = {name: float("inf") for name in configs}
    for round_ in range(2):
        for name in configs:
            if round_ and best[name] > LONG:
                continue
            run(name)  # warm: first compile of a shape, page faults
            first = run(name)
            best[name] = min([best[name], first] + [run(name) for _ in range(_repeats(first) - 1)])
    best["auto_tier"] = tiers["auto"]
    return best


def dispatch_table(cases, seed: int = 42, sizes=SIZES, loops=LOOPS) -> List[dict]:
    """One row per (case, situation): every configuration's seconds and auto's ratio."""
    rng = np.random.default_rng(seed)
    rows = []
    for case in cases:
        expr, vars = case.build(ak.ExprPool())
        features = Features.of(ak.lower(expr, vars))
        for n in sizes:
            arrays = case.inputs(rng, n)
            t = _cell(expr, vars, lambda f: ak.numpy_eval(f, *arrays))
            # Predicted after the cell ran, as its times were taken: LLVM already started.
            costs = CostModel.load().predict_all(features, ak.AVAILABLE_TIERS)
            predicted = {tier: c.total_s(points=n) for tier, c in costs.items()}
            rows.append(_row(case.name, f"bulk n={n:.0e}", t, predicted))
        point = [float(a[0]) for a in case.inputs(rng, 1)]
        for calls in loops:
            def loop(f, calls=calls):
                for _ in range(calls):
                    f(*point)

            t = _cell(expr, vars, loop)
            predicted = {tier: c.total_s(calls=calls) for tier, c in costs.items()}
            rows.append(_row(case.name, f"scalar x{calls:.0e}", t, predicted))
    return rows


def _row(case: str, situation: str, t: Dict[str, float], predicted: Dict[str, float]) -> dict:
    fixed = {k: v for k, v in t.items() if k in ak.AVAILABLE_TIERS}
    best = min(fixed, key=fixed.__getitem__)
    row = {"case": case, "situation": situation, "seconds": fixed, "auto_seconds": t["auto"],
           "auto_tier": t["auto_tier"], "best_tier": best, "ratio": t["auto"] / fixed[best],
           "predicted_seconds": predicted}
    print(f"  {case:15s} {situation:16s} best {best:11s} {fixed[best] * 1e3:10.3f} ms  auto "
          f"({row['auto_tier']}) {t['auto'] * 1e3:10.3f} ms  ratio {row['ratio']:.2f}", file=sys.stderr)
    return row


def markdown(rows: List[dict]) -> str:
    tiers = [t for t in ak.AVAILABLE_TIERS]
    lines = ["| case | situation | " + " | ".join(f"{t} (ms)" for t in tiers) + " | auto (ms) | auto ended on | auto / best |",
             "|" + "---|" * (len(tiers) + 5)]
    for r in rows:
        cells = [f"{'**' if t == r['best_tier'] else ''}{r['seconds'][t] * 1e3:.3f}{'**' if t == r['best_tier'] else ''}" for t in tiers]
        lines.append(f"| {r['case']} | {r['situation']} | " + " | ".join(cells)
                     + f" | {r['auto_seconds'] * 1e3:.3f} | {r['auto_tier']} | {r['ratio']:.2f} |")
    return "\n".join(lines)


def model_accuracy(rows: List[dict]) -> str:
    """Predicted / measured total per tier and cell (1.00: the model was exact)."""
    tiers = list(ak.AVAILABLE_TIERS)
    lines = ["| case | situation | " + " | ".join(tiers) + " |", "|" + "---|" * (len(tiers) + 2)]
    for r in rows:
        cells = [f"{r['predicted_seconds'][t] / r['seconds'][t]:.2f}" for t in tiers]
        lines.append(f"| {r['case']} | {r['situation']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(rows: List[dict]) -> str:
    ratios = [r["ratio"] for r in rows]
    within = sum(r <= WITHIN for r in ratios)
    worst = max(rows, key=lambda r: r["ratio"])
    ok = within >= SHARE * len(rows) and worst["ratio"] <= NEVER_WORSE
    return (f"auto within {WITHIN}x of the best fixed tier in {within} of {len(rows)} cells "
            f"({within / len(rows):.0%}; target >= {SHARE:.0%}); worst {worst['ratio']:.2f}x "
            f"({worst['case']}, {worst['situation']}; target <= {NEVER_WORSE}x): {'MET' if ok else 'NOT MET'}")
