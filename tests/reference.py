"""A reference for alkahest expressions (NumPy, or mpmath at 113 bits for the functions
that can err), with a first-order error bound.

Random expressions are built as small trees; each node gets its value (NumPy, or the
math module where NumPy lacks the function) and a bound on how far an implementation
whose every operation is within ``ULPS`` ulp of the reference may be from it:

    err(node) = ULPS(op) * eps * |value| + sum_i |d op / d arg_i| * err(arg_i)

Points where the bound is not finite (near a discontinuity of floor, a comparison, ...)
are left out of the comparison; everywhere else, values must agree within the bound, and
NaN and infinities must match exactly.

With ``exact=True`` every transcendental node is computed by mpmath and rounded once to a
double, so only the implementation errs: it is then allowed ``LIBMVEC_ULPS`` (glibc's
documented 4 ulp for libmvec, which bounds libm too) plus half an ulp for the reference's
own rounding, per function applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import numpy as np

import alkahest as ak

EPS = np.finfo(np.float64).eps
TINY = 1e-300  # absolute slack: results that underflow lose relative precision

# Ulps per operation between two implementations each within 4 ulp of the true value
# (libmvec / libm on our side, NumPy's SIMD or libm on the reference side).
TRANSCENDENTAL_ULPS = 8.0
EXACT_ULPS = 1.0  # correctly rounded on both sides (+ - * / sqrt)

# Ulps per transcendental operation against the correctly rounded (mpmath) reference.
LIBMVEC_ULPS = 4.0
EXACT_REFERENCE_ULPS = LIBMVEC_ULPS + 0.5

_erf = np.frompyfunc(math.erf, 1, 1)
_erfc = np.frompyfunc(math.erfc, 1, 1)


def _round_half_away(a):
    t = np.trunc(a)
    return np.where(np.abs(a - t) >= 0.5, t + np.sign(a), t)  # keeps the sign of zero


def _d_erf(a):
    return 2 / math.sqrt(math.pi) * np.exp(-a * a)


# name: (numpy function, |derivative|, ulps)
UNARY: Dict[str, Tuple[Callable, Callable, float]] = {
    "neg": (np.negative, lambda a, v: np.ones_like(a), 0.0),
    "sqrt": (np.sqrt, lambda a, v: 0.5 / v, EXACT_ULPS),
    "cbrt": (np.cbrt, lambda a, v: 1 / (3 * v * v), TRANSCENDENTAL_ULPS),
    "exp": (np.exp, lambda a, v: v, TRANSCENDENTAL_ULPS),
    "expm1": (np.expm1, lambda a, v: np.exp(a), TRANSCENDENTAL_ULPS),
    "log": (np.log, lambda a, v: 1 / a, TRANSCENDENTAL_ULPS),
    "log1p": (np.log1p, lambda a, v: 1 / (1 + a), TRANSCENDENTAL_ULPS),
    "log2": (np.log2, lambda a, v: 1 / (a * math.log(2)), TRANSCENDENTAL_ULPS),
    "log10": (np.log10, lambda a, v: 1 / (a * math.log(10)), TRANSCENDENTAL_ULPS),
    "sin": (np.sin, lambda a, v: np.cos(a), TRANSCENDENTAL_ULPS),
    "cos": (np.cos, lambda a, v: np.sin(a), TRANSCENDENTAL_ULPS),
    "tan": (np.tan, lambda a, v: 1 + v * v, TRANSCENDENTAL_ULPS),
    "asin": (np.arcsin, lambda a, v: 1 / np.sqrt(1 - a * a), TRANSCENDENTAL_ULPS),
    "acos": (np.arccos, lambda a, v: 1 / np.sqrt(1 - a * a), TRANSCENDENTAL_ULPS),
    "atan": (np.arctan, lambda a, v: 1 / (1 + a * a), TRANSCENDENTAL_ULPS),
    "sinh": (np.sinh, lambda a, v: np.cosh(a), TRANSCENDENTAL_ULPS),
    "cosh": (np.cosh, lambda a, v: np.sinh(a), TRANSCENDENTAL_ULPS),
    "tanh": (np.tanh, lambda a, v: 1 - v * v, TRANSCENDENTAL_ULPS),
    "asinh": (np.arcsinh, lambda a, v: 1 / np.sqrt(a * a + 1), TRANSCENDENTAL_ULPS),
    "acosh": (np.arccosh, lambda a, v: 1 / np.sqrt(a * a - 1), TRANSCENDENTAL_ULPS),
    "atanh": (np.arctanh, lambda a, v: 1 / (1 - a * a), TRANSCENDENTAL_ULPS),
    "erf": (lambda a: _erf(a).astype(np.float64), lambda a, v: _d_erf(a), TRANSCENDENTAL_ULPS),
    "erfc": (lambda a: _erfc(a).astype(np.float64), lambda a, v: _d_erf(a), TRANSCENDENTAL_ULPS),
    "abs": (np.abs, lambda a, v: np.ones_like(a), 0.0),
}

# Piecewise-constant functions: (numpy function, distance of the argument to a jump).
STEP: Dict[str, Tuple[Callable, Callable]] = {
    "floor": (np.floor, lambda a: np.minimum(a - np.floor(a), np.ceil(a) - a)),
    "ceil": (np.ceil, lambda a: np.minimum(a - np.floor(a), np.ceil(a) - a)),
    "round": (_round_half_away, lambda a: np.abs(np.abs(a - np.trunc(a)) - 0.5)),
    "not": (lambda a: (a == 0).astype(np.float64), np.abs),
}

def _ieee_minimum(x, y):
    """IEEE 754-2019 minimum: NaN-propagating, -0 below +0 (np.minimum leaves ±0 open)."""
    return np.where(x == y, np.where(np.signbit(x), x, y), np.minimum(x, y))


def _ieee_maximum(x, y):
    return np.where(x == y, np.where(np.signbit(x), y, x), np.maximum(x, y))


ARITH = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "pow": np.power,
    "atan2": np.arctan2,
    "min": _ieee_minimum,
    "max": _ieee_maximum,
    "copysign": np.copysign,
}

COMPARE = {
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
    "eq": np.equal,
    "ne": np.not_equal,
    "and": lambda a, b: (a != 0) & (b != 0),
    "or": lambda a, b: (a != 0) | (b != 0),
}


def _mp_functions():
    import mpmath

    mp = mpmath.mp
    return {
        "cbrt": mpmath.cbrt, "exp": mpmath.exp, "expm1": mpmath.expm1, "log": mpmath.log,
        "log1p": mpmath.log1p, "log2": lambda a: mpmath.log(a, 2), "log10": mpmath.log10,
        "sin": mpmath.sin, "cos": mpmath.cos, "tan": mpmath.tan, "asin": mpmath.asin,
        "acos": mpmath.acos, "atan": mpmath.atan, "sinh": mpmath.sinh, "cosh": mpmath.cosh,
        "tanh": mpmath.tanh, "asinh": mpmath.asinh, "acosh": mpmath.acosh, "atanh": mpmath.atanh,
        "erf": mpmath.erf, "erfc": mpmath.erfc, "pow": mpmath.power, "atan2": mpmath.atan2,
    }, mp


def exact(name: str, numpy_value: np.ndarray, *args: np.ndarray) -> np.ndarray:
    """``name`` of ``args`` by mpmath at 113 bits, rounded once to double. Non-finite or
    zero arguments (mpmath has no signed zero) and results outside the reals (where IEEE
    gives NaN or a pole) keep NumPy's IEEE value."""
    import mpmath

    fns, mp = _mp_functions()
    f = fns[name]
    out = np.array(numpy_value, dtype=np.float64, copy=True)
    flat_args = [np.broadcast_to(a, out.shape).ravel() for a in args]
    flat = out.reshape(-1)
    with mp.workprec(113):
        for k in range(flat.size):
            xs = [float(a[k]) for a in flat_args]
            if not all(math.isfinite(v) and v != 0 for v in xs) or not math.isfinite(flat[k]):
                continue
            try:
                r = f(*[mpmath.mpf(v) for v in xs])
            except (ValueError, ZeroDivisionError, OverflowError, mpmath.libmp.NoConvergence):
                continue  # outside what mpmath evaluates here: keep the IEEE value
            if isinstance(r, mpmath.mpc):
                if r.imag != 0:
                    continue
                r = r.real
            flat[k] = float(r)
    return out


@dataclass
class Ref:
    value: np.ndarray
    err: np.ndarray


def _prop(deriv, err):
    """|deriv| * err, with exact arguments (err == 0) contributing nothing."""
    with np.errstate(all="ignore"):
        return np.where(err == 0, 0.0, np.abs(deriv) * err)


def _own(value, ulps):
    with np.errstate(all="ignore"):
        return np.where(np.isfinite(value), ulps * EPS * np.abs(value) + TINY * (ulps > 0), 0.0)


def _ambiguous(err, dist):
    """Infinite error where an argument may fall on either side of a jump."""
    return np.where((err > 0) & (dist <= 2 * err), np.inf, 0.0)


PERIODIC = frozenset({"sin", "cos", "tan"})

# Distance of an argument to where a function's derivative is infinite: a first-order
# bound is meaningless when the argument's own error reaches that far (tan(atan2(1, 0))
# is 1.6e16 in any double computation and 2.3e34 exactly).
SINGULAR: Dict[str, Callable] = {
    "tan": lambda a: np.abs(np.cos(a)), "log": np.abs, "log2": np.abs, "log10": np.abs,
    "log1p": lambda a: np.abs(1 + a), "sqrt": np.abs, "cbrt": np.abs,
    "asin": lambda a: 1 - np.abs(a), "acos": lambda a: 1 - np.abs(a), "atanh": lambda a: 1 - np.abs(a),
    "acosh": lambda a: a - 1,
}
PERIODIC_ARG_ERROR = 1e-3  # radians: beyond this a periodic function's result is unchecked


def unary(name: str, a: Ref, use_mpmath: bool = False) -> Ref:
    with np.errstate(all="ignore"):
        if name in STEP:
            f, dist = STEP[name]
            v = f(a.value)
            return Ref(v, _ambiguous(a.err, dist(a.value)))
        f, d, ulps = UNARY[name]
        v = f(a.value)
        if use_mpmath and ulps == TRANSCENDENTAL_ULPS:
            v, ulps = exact(name, v, a.value), EXACT_REFERENCE_ULPS
        err = _own(v, ulps) + _prop(d(a.value, v), a.err)
        if name in SINGULAR:
            err = np.where((a.err > 0) & (SINGULAR[name](a.value) <= 2 * a.err), np.inf, err)
        if name in PERIODIC:
            # A first-order bound assumes the argument's error is small next to the period:
            # sin(x**16) at x = 9 has an argument off by radians, and any value in [-1, 1]
            # is then as right as the reference's.
            err = np.where(a.err > PERIODIC_ARG_ERROR, np.inf, err)
        return Ref(v, err)


def binary(name: str, a: Ref, b: Ref, use_mpmath: bool = False) -> Ref:
    x, y = a.value, b.value
    with np.errstate(all="ignore"):
        if name in COMPARE:
            v = COMPARE[name](x, y).astype(np.float64)
            if name in ("and", "or"):
                amb = _ambiguous(a.err, np.abs(x)) + _ambiguous(b.err, np.abs(y))
            else:
                amb = _ambiguous(a.err + b.err, np.abs(x - y))
            return Ref(v, amb)
        v = ARITH[name](x, y)
        if name in ("add", "sub"):
            err = _prop(1.0, a.err) + _prop(1.0, b.err)
        elif name == "mul":
            err = _prop(y, a.err) + _prop(x, b.err)
        elif name == "div":
            err = _prop(1 / y, a.err) + _prop(x / (y * y), b.err)
            err = np.where((b.err > 0) & (np.abs(y) <= 2 * b.err), np.inf, err)  # near a pole
        elif name == "pow":
            err = _prop(y * np.power(x, y - 1), a.err) + _prop(np.log(np.abs(x)) * v, b.err)
        elif name == "atan2":
            r2 = x * x + y * y
            err = _prop(y / r2, a.err) + _prop(x / r2, b.err)
        elif name in ("min", "max"):
            err = np.maximum(a.err, b.err)
        else:  # copysign; the sign of a NaN is unspecified by IEEE 754, so NaN signs are ambiguous
            err = a.err + _ambiguous(b.err, np.abs(y)) + np.where(np.isnan(y), np.inf, 0.0)
        ulps = TRANSCENDENTAL_ULPS if name in ("pow", "atan2") else EXACT_ULPS
        if use_mpmath and name in ("pow", "atan2"):
            v, ulps = exact(name, v, x, y), EXACT_REFERENCE_ULPS
        if name in ("min", "max", "copysign"):
            ulps = 0.0
        return Ref(v, _own(v, ulps) + err)


def select(c: Ref, a: Ref, b: Ref) -> Ref:
    with np.errstate(all="ignore"):
        take = c.value != 0
        v = np.where(take, a.value, b.value)
        err = np.where(take, a.err, b.err) + _ambiguous(c.err, np.abs(c.value))
        return Ref(v, err)


def integer_power(a: Ref, n: int, use_mpmath: bool = False) -> Ref:
    """``a**n``: alkahest multiplies (|n| roundings), the reference calls pow."""
    with np.errstate(all="ignore"):
        v = np.power(a.value, float(n))
        ulps = abs(n) + TRANSCENDENTAL_ULPS
        if use_mpmath:
            v, ulps = exact("pow", v, a.value, np.float64(n)), abs(n) + 0.5
        return Ref(v, _own(v, ulps) + _prop(n * np.power(a.value, float(n - 1)), a.err))


def build(tree, syms, inputs, use_mpmath: bool = False) -> Tuple[ak.Expr, Ref]:
    """The alkahest expression and the reference for a tree of tuples (see test_properties);
    ``use_mpmath``: transcendental nodes from mpmath (see the module docstring)."""
    kind = tree[0]
    if kind == "sym":
        i = tree[1]
        return syms[i], Ref(inputs[i], np.zeros_like(inputs[i]))
    if kind == "const":
        v = np.full_like(inputs[0], tree[1])
        return syms[0].pool.constant(tree[1]), Ref(v, np.zeros_like(v))
    if kind == "unary":
        e, r = build(tree[2], syms, inputs, use_mpmath)
        fn = getattr(ak, tree[1]) if tree[1] not in ("neg", "not") else None
        expr = -e if tree[1] == "neg" else ~e if tree[1] == "not" else fn(e)
        return expr, unary(tree[1], r, use_mpmath)
    if kind == "binary":
        (ea, ra), (eb, rb) = build(tree[2], syms, inputs, use_mpmath), build(tree[3], syms, inputs, use_mpmath)
        ops = {"add": ea + eb, "sub": None, "mul": None}
        name = tree[1]
        expr = {
            "add": lambda: ea + eb,
            "sub": lambda: ea - eb,
            "mul": lambda: ea * eb,
            "div": lambda: ea / eb,
            "pow": lambda: ea**eb,
            "and": lambda: ea & eb,
            "or": lambda: ea | eb,
        }.get(name, lambda: getattr(ak, name)(ea, eb))()
        del ops
        return expr, binary(name, ra, rb, use_mpmath)
    if kind == "powi":
        e, r = build(tree[1], syms, inputs, use_mpmath)
        return e ** tree[2], integer_power(r, tree[2], use_mpmath)
    if kind == "where":
        (ec, rc), (ea, ra), (eb, rb) = (build(t, syms, inputs, use_mpmath) for t in tree[1:])
        return ak.where(ec, ea, eb), select(rc, ra, rb)
    raise ValueError(kind)


def assert_close(got: np.ndarray, ref: Ref, context: str = "", slack: float = 2.0) -> int:
    """Asserts agreement within ``slack`` times the bound where it is finite (the default
    2 covers the first-order bound's neglected terms); returns how many points were checked."""
    got = np.asarray(got, dtype=np.float64)
    want, bound = np.broadcast_arrays(ref.value, ref.err)
    checked = np.isfinite(bound)
    nan_ok = np.isnan(want) == np.isnan(got)
    with np.errstate(all="ignore"):
        inf_ok = np.where(np.isinf(want) | np.isinf(got), want == got, True)
        diff = np.abs(got - want)
        val_ok = np.isnan(want) | np.isinf(want) | (diff <= slack * bound)
    bad = checked & ~(nan_ok & inf_ok & val_ok)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise AssertionError(
            f"{context}: point {k}: got {got.flat[k]!r}, reference {want.flat[k]!r}, "
            f"allowed error {slack * bound.flat[k]:.3g}"
        )
    return int(checked.sum())
