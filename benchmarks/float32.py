"""The "float32" section: the suite on float32 inputs, against alkahest in float64 and
against NumPy, numexpr and numba on the same float32 arrays.

alkahest runs each case on its LLVM and Cranelift tiers twice: compiled for float64 on
float64 inputs, and on float32 inputs (the function follows its inputs' type, so the
call computes in float32 and returns float32). The peers get the float32 arrays as a user
would hand them over; each column says the dtype the engine returned (NumPy keeps float32
with Python-number constants; numexpr and numba may compute parts in float64). Every
result is checked against NumPy's float64 result at float32 precision before it is timed.

Ratios: ``f32 speed-up`` is alkahest float64 time over alkahest float32 time on the same
tier; ``peer / alkahest`` is the peer's float32 time over alkahest's float32 time on the
LLVM tier (> 1: alkahest is faster).
"""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

import alkahest as ak
from engines import numba_engine, numexpr_engine, numpy_engine
from suite import SUITE, Case
from timing import best_time

SIZES = (10**6, 10**7)
TIERS = ("llvm", "cranelift")


def _check(name: str, case: str, got: Any, want: np.ndarray) -> None:
    got = np.asarray(got, dtype=np.float64)
    scale = np.maximum(np.abs(want), 1.0)
    with np.errstate(invalid="ignore"):
        err = float(np.nanmax(np.abs(got - want) / scale)) if want.size else 0.0
    if not err <= 1e-4 or not np.array_equal(np.isnan(got), np.isnan(want)):
        raise SystemExit(f"{name} gives wrong results on {case} in float32: max scaled error {err:.3g}")


def _alkahest(case: Case, tier: str):
    expr, vars = case.build(ak.ExprPool())
    f = ak.compile_expr(expr, vars, ak.CompileConfig(tier=tier, cache_dir=False), cache=False)
    return lambda arrays: ak.numpy_eval(f, *arrays)


def rows(cases: Optional[Sequence[Case]] = None, sizes: Sequence[int] = SIZES, budget: float = 0.5) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []
    rng = np.random.default_rng(7)
    peers = [e for e in (numpy_engine(), numexpr_engine(1), numba_engine(1)) if e is not None]
    for case in cases or SUITE:
        runners = {f"alkahest-{t}": _alkahest(case, t) for t in TIERS}
        peer_runners = {e.name: e.prepare(case) for e in peers}
        for n in sizes:
            wide = case.inputs(rng, n)
            narrow = [a.astype(np.float32) for a in wide]
            # The reference: float64 on the float32 inputs' values.
            want = case.numpy(*[a.astype(np.float64) for a in narrow])
            timed = [(name, "float64", run, wide) for name, run in runners.items()]
            timed += [(name, "float32", run, narrow) for name, run in runners.items()]
            timed += [(name, "float32", run, narrow) for name, run in peer_runners.items() if run is not None]
            for name, inputs_dtype, run, arrays in timed:
                result = run(arrays)
                if inputs_dtype == "float32":
                    _check(name, case.name, result, want)
                sec = best_time(lambda: run(arrays), budget)
                row = {"case": case.name, "n": n, "engine": name, "inputs": inputs_dtype,
                       "result": str(np.asarray(result).dtype), "seconds": sec}
                out.append(row)
                print(f"  {case.name:15s} n={n:<8.0e} {name:20s} {inputs_dtype} -> {row['result']:8s} "
                      f"{sec * 1e3:9.3f} ms", file=sys.stderr)
    return out


def markdown(rows: List[Dict[str, Any]]) -> str:
    by: Dict[tuple, Dict[tuple, Dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["case"], r["n"]), {})[(r["engine"], r["inputs"])] = r
    peers = sorted({r["engine"] for r in rows if not r["engine"].startswith("alkahest")})
    head = ["case", "n"] + [f"{t} f64 / f32 (ms)" for t in TIERS] + [f"{t} f32 speed-up" for t in TIERS]
    head += [f"{p} f32 (ms, result)" for p in peers] + [f"{p} / alkahest-llvm f32" for p in peers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (case, n), t in by.items():
        cells = [case, f"{n:.0e}"]
        for tier in TIERS:
            a, b = t.get((f"alkahest-{tier}", "float64")), t.get((f"alkahest-{tier}", "float32"))
            cells.append(f"{a['seconds'] * 1e3:.3f} / {b['seconds'] * 1e3:.3f}" if a and b else "—")
        for tier in TIERS:
            a, b = t.get((f"alkahest-{tier}", "float64")), t.get((f"alkahest-{tier}", "float32"))
            cells.append(f"{a['seconds'] / b['seconds']:.2f}" if a and b else "—")
        mine = t.get(("alkahest-llvm", "float32"))
        for p in peers:
            r = t.get((p, "float32"))
            cells.append(f"{r['seconds'] * 1e3:.3f} ({r['result']})" if r else "—")
        for p in peers:
            r = t.get((p, "float32"))
            cells.append(f"{r['seconds'] / mine['seconds']:.2f}" if r and mine else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
