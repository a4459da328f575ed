"""Measured accuracy of alkahest's functions against mpmath (correctly rounded), scalar
calls (libm) and bulk evaluation (libmvec), in ulps of the exact result.

``python tests/accuracy.py [points]`` prints the table in ``docs/accuracy.md``;
``tests/test_accuracy.py`` checks that the documented bounds still hold on fewer points.
"""

from __future__ import annotations

import sys
from typing import Dict, List, Tuple

import mpmath
import numpy as np

import alkahest as ak

# name: (mpmath function, domain sampler(rng, n))
def _wide(lo: float, hi: float):
    """Magnitudes spread log-uniformly over [lo, hi], both signs."""
    def sample(rng, n):
        mag = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
        return mag * np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return sample


def _span(lo: float, hi: float):
    return lambda rng, n: rng.uniform(lo, hi, n)


def _positive(lo: float, hi: float):
    return lambda rng, n: np.exp(rng.uniform(np.log(lo), np.log(hi), n))


FUNCTIONS = {
    "sqrt": (mpmath.sqrt, _positive(1e-300, 1e300)),
    "cbrt": (mpmath.cbrt, _wide(1e-300, 1e300)),
    "exp": (mpmath.exp, _span(-700, 700)),
    "expm1": (mpmath.expm1, _wide(1e-10, 700)),
    "log": (mpmath.log, _positive(1e-300, 1e300)),
    "log1p": (mpmath.log1p, _positive(1e-10, 1e10)),
    "log2": (lambda a: mpmath.log(a, 2), _positive(1e-300, 1e300)),
    "log10": (mpmath.log10, _positive(1e-300, 1e300)),
    "sin": (mpmath.sin, _wide(1e-8, 1e5)),
    "cos": (mpmath.cos, _wide(1e-8, 1e5)),
    "tan": (mpmath.tan, _wide(1e-8, 1e5)),
    "asin": (mpmath.asin, _span(-1, 1)),
    "acos": (mpmath.acos, _span(-1, 1)),
    "atan": (mpmath.atan, _wide(1e-8, 1e8)),
    "sinh": (mpmath.sinh, _wide(1e-8, 700)),
    "cosh": (mpmath.cosh, _wide(1e-8, 700)),
    "tanh": (mpmath.tanh, _wide(1e-8, 20)),
    "asinh": (mpmath.asinh, _wide(1e-8, 1e300)),
    "acosh": (mpmath.acosh, lambda rng, n: 1 + np.exp(rng.uniform(np.log(1e-10), np.log(1e300), n))),
    "atanh": (mpmath.atanh, _span(-0.999999, 0.999999)),
    "erf": (mpmath.erf, _wide(1e-8, 6)),
    "erfc": (mpmath.erfc, _span(-5, 26)),
}


def ulps(got: np.ndarray, xs: np.ndarray, f) -> float:
    """Largest error of ``got`` in ulps of the exact ``f(xs)`` (finite, non-zero results)."""
    worst = 0.0
    with mpmath.workprec(120):
        for x, g in zip(xs.tolist(), got.tolist()):
            exact = f(mpmath.mpf(x))
            if isinstance(exact, mpmath.mpc) or not mpmath.isfinite(exact) or exact == 0:
                continue
            e = float(exact)
            if not np.isfinite(e) or e == 0.0:
                continue
            ulp = float(np.spacing(abs(e)))
            if ulp == 0.0 or abs(e) < np.finfo(np.float64).tiny:
                continue  # subnormal results: absolute, not relative, accuracy
            worst = max(worst, float(abs(mpmath.mpf(g) - exact)) / ulp)
    return worst


def measure(name: str, n: int, seed: int = 0) -> Tuple[float, float]:
    """(scalar, bulk) worst ulps of ``name`` on ``n`` points of its domain."""
    f, sample = FUNCTIONS[name]
    xs = sample(np.random.default_rng(seed), n)
    pool = ak.ExprPool()
    x = pool.symbol("x")
    fn = ak.compile_expr(getattr(ak, name)(x), [x], ak.CompileConfig(tier="interpreter"), cache=False)
    scalar = np.array([fn(v) for v in xs.tolist()])
    bulk = ak.numpy_eval(fn, xs)
    return ulps(scalar, xs, f), ulps(bulk, xs, f)


def table(n: int) -> List[Tuple[str, float, float]]:
    return [(name, *measure(name, n)) for name in FUNCTIONS]


def markdown(rows) -> str:
    lines = ["| function | scalar (libm) | bulk (libmvec, " + ak._native.vector_math_isa() + ") |", "|---|---:|---:|"]
    lines += [f"| {name} | {s:.2f} | {b:.2f} |" for name, s, b in rows]
    return "\n".join(lines)


def documented(path) -> Dict[str, Tuple[float, float]]:
    """The bounds the table in ``docs/accuracy.md`` states: {function: (scalar, bulk)}."""
    bounds = {}
    for line in open(path, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] in FUNCTIONS:
            bounds[cells[0]] = (float(cells[1]), float(cells[2]))
    return bounds


if __name__ == "__main__":
    print(markdown(table(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)))
