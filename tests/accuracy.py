"""Measured accuracy of alkahest's functions against mpmath (correctly rounded), scalar
calls (libm) and bulk evaluation (libmvec), in ulps of the exact result, in float64 and
in float32 (``CompileConfig(dtype="float32")``: libm's and libmvec's float routines).

``python tests/accuracy.py [points] [float32]`` prints a table of ``docs/accuracy.md``;
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


#: The float32 domains: the float64 ones within float32's range (exp and the hyperbolic
#: functions up to where float32 overflows).
FUNCTIONS32 = {
    **{name: FUNCTIONS[name] for name in ("sin", "cos", "tan", "asin", "acos", "atan", "log1p")},
    "sqrt": (mpmath.sqrt, _positive(1e-37, 1e38)),
    "cbrt": (mpmath.cbrt, _wide(1e-37, 1e38)),
    "exp": (mpmath.exp, _span(-87, 88)),
    "expm1": (mpmath.expm1, _wide(1e-10, 88)),
    "log": (mpmath.log, _positive(1e-37, 1e38)),
    "log2": (lambda a: mpmath.log(a, 2), _positive(1e-37, 1e38)),
    "log10": (mpmath.log10, _positive(1e-37, 1e38)),
    "sinh": (mpmath.sinh, _wide(1e-8, 88)),
    "cosh": (mpmath.cosh, _wide(1e-8, 88)),
    "tanh": (mpmath.tanh, _wide(1e-8, 9)),
    "asinh": (mpmath.asinh, _wide(1e-8, 1e38)),
    "acosh": (mpmath.acosh, lambda rng, n: 1 + np.exp(rng.uniform(np.log(1e-6), np.log(1e38), n))),
    "atanh": (mpmath.atanh, _span(-0.9999, 0.9999)),
    "erf": (mpmath.erf, _wide(1e-8, 4)),
    "erfc": (mpmath.erfc, _span(-4, 10)),
}


def ulps(got: np.ndarray, xs: np.ndarray, f, dtype=np.float64) -> float:
    """Largest error of ``got`` in ulps (of ``dtype``) of the exact ``f(xs)`` (finite,
    non-zero, normal results)."""
    worst = 0.0
    info = np.finfo(dtype)
    with mpmath.workprec(120):
        for x, g in zip(xs.tolist(), got.tolist()):
            exact = f(mpmath.mpf(x))
            if isinstance(exact, mpmath.mpc) or not mpmath.isfinite(exact) or exact == 0:
                continue
            e = float(exact)
            if not np.isfinite(e) or e == 0.0 or abs(e) > info.max:
                continue
            ulp = float(np.spacing(dtype(abs(e))))
            if ulp == 0.0 or abs(e) < info.tiny:
                continue  # subnormal results: absolute, not relative, accuracy
            worst = max(worst, float(abs(mpmath.mpf(g) - exact)) / ulp)
    return worst


def measure(name: str, n: int, seed: int = 0, dtype: str = "float64") -> Tuple[float, float]:
    """(scalar, bulk) worst ulps of ``name`` on ``n`` points of its domain, computed in
    ``dtype`` (the points are ``dtype`` values)."""
    f, sample = (FUNCTIONS32 if dtype == "float32" else FUNCTIONS)[name]
    xs = sample(np.random.default_rng(seed), n).astype(dtype)
    pool = ak.ExprPool()
    x = pool.symbol("x")
    config = ak.CompileConfig(tier="interpreter", dtype=dtype)
    fn = ak.compile_expr(getattr(ak, name)(x), [x], config, cache=False)
    scalar = np.array([fn(v) for v in xs.tolist()])
    bulk = ak.numpy_eval(fn, xs)
    assert bulk.dtype == dtype
    return ulps(scalar, xs, f, np.dtype(dtype).type), ulps(bulk, xs, f, np.dtype(dtype).type)


def table(n: int, dtype: str = "float64") -> List[Tuple[str, float, float]]:
    return [(name, *measure(name, n, dtype=dtype)) for name in FUNCTIONS]


def markdown(rows) -> str:
    lines = ["| function | scalar (libm) | bulk (libmvec, " + ak._native.vector_math_isa() + ") |", "|---|---:|---:|"]
    lines += [f"| {name} | {s:.2f} | {b:.2f} |" for name, s, b in rows]
    return "\n".join(lines)


#: The heading of the float32 section of ``docs/accuracy.md``, whose table has the
#: float32 bounds (the first table has the float64 ones).
FLOAT32_HEADING = "## float32"


def documented(path, dtype: str = "float64") -> Dict[str, Tuple[float, float]]:
    """The bounds ``docs/accuracy.md`` states for ``dtype``: {function: (scalar, bulk)}."""
    bounds = {}
    in_float32 = False
    for line in open(path, encoding="utf-8"):
        if line.startswith("## "):
            in_float32 = line.strip() == FLOAT32_HEADING
        if in_float32 != (dtype == "float32"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] in FUNCTIONS and cells[0] not in bounds:
            bounds[cells[0]] = (float(cells[1]), float(cells[2]))
    return bounds


if __name__ == "__main__":
    dtype = sys.argv[2] if len(sys.argv) > 2 else "float64"
    print(markdown(table(int(sys.argv[1]) if len(sys.argv) > 1 else 20000, dtype)))
