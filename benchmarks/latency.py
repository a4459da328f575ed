"""Latency of small calls: what a call costs beyond its kernel, where ODE integrators,
optimisers and Monte-Carlo loops of small batches spend their time.

For each suite case on the LLVM tier, at 1, 10, 100 and 1,000 points, with contiguous
inputs, strided inputs (every other element) and the last input a Python float, with one
and two outputs: ``numpy_eval``, ``f(...)`` and ``numpy_eval_par`` against NumPy's own
ufuncs on the same expression and numba's ``@vectorize`` of its scalar form. The
kernel's own time is what the runner measured inside the call (``f._measured()``), so
"fixed cost" is the rest: argument checks, allocation, the Python call.

    python benchmarks/run.py --only latency
"""

from __future__ import annotations

import sys
import timeit
from typing import Any, Callable, Dict, List, Optional

import numpy as np

import alkahest as ak

SIZES = (1, 10, 100, 1000)


def _time(fn: Callable[[], Any], min_total: float = 0.05) -> float:
    """Median per-call seconds over 7 repeats of a loop long enough to time."""
    number = 1
    while timeit.timeit(fn, number=number) < min_total / 10:
        number *= 4
    per = sorted(t / number for t in timeit.repeat(fn, number=number, repeat=7))
    return per[len(per) // 2]


def _numba_vectorize(case, n_inputs: int) -> Optional[Callable]:
    try:
        import numba
    except ImportError:
        return None
    from engines import numba_kernel

    kernel = numba_kernel(case)
    args = ", ".join(f"a{i}" for i in range(n_inputs))
    ns = {"kernel": kernel}
    exec(f"def vec({args}):\n    return kernel({args})\n", ns)  # noqa: S102 - our own generated source
    return numba.vectorize([f"float64({', '.join(['float64'] * n_inputs)})"])(ns["vec"])


def _kernel_seconds(f: ak.CompiledFn, run: Callable[[], Any], calls: int = 2000) -> float:
    """Seconds per call spent in the runner (the kernel), as the function measures it."""
    before = f._measured().get(f.tier, (0, 0, 0.0))
    for _ in range(calls):
        run()
    after = f._measured().get(f.tier, (0, 0, 0.0))
    return (after[2] - before[2]) / max(1, after[0] - before[0])


def latency(cases) -> List[Dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(3)
    for case in cases:
        expr, vars = case.build(ak.ExprPool())
        config = ak.CompileConfig(tier="llvm", cache_dir=False)
        fns = {1: ak.compile_expr(expr, vars, config, cache=False),
               2: ak.compile_expr([expr, expr * 2.0], vars, config, cache=False)}
        vec = _numba_vectorize(case, len(vars))
        for n in SIZES:
            data = case.inputs(rng, 2 * n)
            layouts = {"contiguous": [a[:n].copy() for a in data], "strided": [a[::2] for a in data]}
            if len(vars) > 1:
                layouts["scalar"] = [a[:n].copy() for a in data[:-1]] + [float(data[-1][0])]
            for layout, args in layouts.items():
                for n_out, f in fns.items():
                    row: Dict[str, Any] = {"case": case.name, "n": n, "layout": layout, "outputs": n_out}
                    row["numpy_eval"] = _time(lambda: ak.numpy_eval(f, *args))
                    row["call"] = _time(lambda: f(*args))
                    row["par"] = _time(lambda: ak.numpy_eval_par(f, *args))
                    row["kernel"] = _kernel_seconds(f, lambda: ak.numpy_eval(f, *args))
                    if n_out == 1:
                        with np.errstate(all="ignore"):
                            row["numpy"] = _time(lambda: case.numpy(*args))
                        if vec is not None:
                            row["numba"] = _time(lambda: vec(*args))
                    rows.append(row)
            print(f"  {case.name:15s} n={n:<5d} done", file=sys.stderr)
    return rows


def scalar_call(repeats: int = 7) -> Dict[str, float]:
    """Median ns of ``f(x, y)`` for x**2 + sin(y) on each tier."""
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    out = {}
    for tier in ak.AVAILABLE_TIERS:
        f = ak.compile_expr(x**2 + ak.sin(y), [x, y], ak.CompileConfig(tier=tier, cache_dir=False), cache=False)
        per = sorted(t / 200_000 for t in timeit.repeat(lambda: f(0.3, 0.5), number=200_000, repeat=repeats))
        out[tier] = per[len(per) // 2]
    return out


def markdown(rows, scalar: Dict[str, float]) -> str:
    us = lambda s: f"{s * 1e6:.2f}" if s is not None else "—"  # noqa: E731
    lines = ["| case | n | inputs | outputs | kernel | numpy_eval | fixed cost | f(...) | numpy_eval_par | par / eval |"
             " NumPy | numba @vectorize | numba / numpy_eval |", "|" + "---|" * 13]
    worst = {"fixed": 0.0, "par": 0.0, "call_fixed": 0.0}
    slower_than_numba = []
    for r in rows:
        fixed = r["numpy_eval"] - r["kernel"]
        worst["fixed"] = max(worst["fixed"], fixed)
        worst["call_fixed"] = max(worst["call_fixed"], r["call"] - r["kernel"])
        worst["par"] = max(worst["par"], r["par"] / r["numpy_eval"])
        vs = r.get("numba")
        if vs is not None and r["n"] == 1000 and vs < r["numpy_eval"]:
            slower_than_numba.append(f"{r['case']} ({r['layout']})")
        lines.append(
            f"| {r['case']} | {r['n']} | {r['layout']} | {r['outputs']} | {us(r['kernel'])} | {us(r['numpy_eval'])} | "
            f"{us(fixed)} | {us(r['call'])} | {us(r['par'])} | {r['par'] / r['numpy_eval']:.2f} | {us(r.get('numpy'))} | "
            f"{us(vs)} | {vs / r['numpy_eval']:.2f} |" if vs else
            f"| {r['case']} | {r['n']} | {r['layout']} | {r['outputs']} | {us(r['kernel'])} | {us(r['numpy_eval'])} | "
            f"{us(fixed)} | {us(r['call'])} | {us(r['par'])} | {r['par'] / r['numpy_eval']:.2f} | {us(r.get('numpy'))} | — | — |")
    lines += ["", "Times in microseconds (median of 7). Largest fixed cost (numpy_eval − kernel): "
              f"{worst['fixed'] * 1e6:.2f} us; of f(...): {worst['call_fixed'] * 1e6:.2f} us; largest "
              f"numpy_eval_par / numpy_eval: {worst['par']:.2f}. At 1,000 points numba's @vectorize was faster than "
              f"numpy_eval in: {', '.join(slower_than_numba) or 'no case'}.", "",
              "Scalar call of x**2 + sin(y), median: " + ", ".join(f"{t} {v * 1e9:.0f} ns" for t, v in scalar.items()) + "."]
    return "\n".join(lines)

