"""The "background" section: what a caller loses while a tier compiles in the background.

alkahest compiles faster tiers on a background thread while the calls go on (see
docs/dispatch.md). On a machine with few cores that thread competes with the caller. Here
the caller runs one of two loops on the LLVM tier's polynomial: ``numpy_eval_par`` at 10^5
points (both cores) or scalar calls. A background thread meanwhile compiles the
500-operation DAG for LLVM three times (opt_level 3, no disk cache), first at the
caller's priority and then at the lower priority the dispatcher gives its compile
threads. Each row gives the caller's throughput during the compile as a share of its
throughput alone, and the compile's wall time.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from typing import Any, Callable, Dict, List

import numpy as np

import alkahest as ak
from alkahest import dispatch
from suite import SUITE


def _case(name: str):
    return next(c for c in SUITE if c.name == name)


def _compile_in_background(lower_priority: bool) -> None:
    if lower_priority:
        dispatch._lower_this_threads_priority()
    for _ in range(3):
        e, v = _case("dag500").build(ak.ExprPool())
        ak.compile_expr(e, v, ak.CompileConfig(tier="llvm", opt_level=3, cache_dir=False), cache=False)


def _rate(step: Callable[[], int], seconds: float = 0.0, busy: threading.Thread = None) -> float:
    done, start = 0, time.perf_counter()
    while (busy.is_alive() if busy is not None else time.perf_counter() - start < seconds):
        done += step()
    return done / (time.perf_counter() - start)


def rows(repeats: int = 3) -> List[Dict[str, Any]]:
    expr, vars = _case("polynomial").build(ak.ExprPool())
    f = ak.compile_expr(expr, vars, ak.CompileConfig(tier="llvm"), cache=False)
    xs = np.linspace(0.0, 1.0, 100_000)

    def bulk() -> int:
        ak.numpy_eval_par(f, xs)
        return xs.size

    def scalar() -> int:
        for _ in range(1000):
            f(0.3)
        return 1000

    # The first LLVM compile pays the start-up: not part of what is measured.
    _compile_in_background(False)
    out = []
    for caller, step in (("numpy_eval_par, 1e5 points", bulk), ("scalar calls", scalar)):
        for lower in (False, True):
            shares, walls = [], []
            for _ in range(repeats):
                alone = _rate(step, seconds=1.0)
                th = threading.Thread(target=_compile_in_background, args=(lower,))
                start = time.perf_counter()
                th.start()
                during = _rate(step, busy=th)
                walls.append(time.perf_counter() - start)
                shares.append(during / alone)
            row = {"caller": caller, "compile priority": "lowered" if lower else "same", "share": statistics.median(shares),
                   "shares": shares, "compile_s": statistics.median(walls)}
            out.append(row)
            print(f"  background {caller:28s} {row['compile priority']:8s} caller at {row['share']:.2f} "
                  f"of alone, compile {row['compile_s']:.2f} s", file=sys.stderr)
    return out


def markdown(result: List[Dict[str, Any]]) -> str:
    lines = ["| caller | compile thread priority | caller's throughput during the compile / alone (median; each run) | compile wall time (s) |",
             "|---|---|---:|---:|"]
    for r in result:
        each = ", ".join(f"{s:.2f}" for s in r["shares"])
        lines.append(f"| {r['caller']} | {r['compile priority']} | {r['share']:.2f} ({each}) | {r['compile_s']:.2f} |")
    return "\n".join(lines)
