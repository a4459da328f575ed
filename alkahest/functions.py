"""Mathematical functions, conditions and ``where`` for alkahest expressions.

Each function takes expressions or plain numbers (at least one expression) and returns
a new expression of the same pool:

>>> from alkahest import ExprPool, sin, where
>>> pool = ExprPool(); x = pool.symbol("x")
>>> where(x > 0, sin(x), 0)
where(x > 0, sin(x), 0)
"""

from __future__ import annotations

from typing import Callable, Union

from . import _native
from ._native import Expr
from .errors import ArgumentTypeError, ExpressionError

Operand = Union[Expr, float, int]

def _unary(name: str, what: str) -> Callable[[Operand], Expr]:
    def fn(x: Operand) -> Expr:
        return _native.apply(name, x)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"{what[0].upper()}{what[1:]}.\n\n>>> {name}(x)  # doctest: +SKIP\n"
    return fn


def _binary(name: str, params: str, what: str) -> Callable[[Operand, Operand], Expr]:
    op = {"logical_and": "and", "logical_or": "or"}.get(name, name)

    def fn(a: Operand, b: Operand) -> Expr:
        return _native.apply(op, a, b)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"{name}({params}): {what}.\n\n>>> {name}(x, 2.0)  # doctest: +SKIP\n"
    return fn


sqrt = _unary("sqrt", "square root")
cbrt = _unary("cbrt", "cube root")
exp = _unary("exp", "e**x")
expm1 = _unary("expm1", "exp(x) - 1, accurate near 0")
log = _unary("log", "natural logarithm")
log1p = _unary("log1p", "log(1 + x), accurate near 0")
log2 = _unary("log2", "base-2 logarithm")
log10 = _unary("log10", "base-10 logarithm")
sin = _unary("sin", "sine (radians)")
cos = _unary("cos", "cosine (radians)")
tan = _unary("tan", "tangent (radians)")
asin = _unary("asin", "inverse sine")
acos = _unary("acos", "inverse cosine")
atan = _unary("atan", "inverse tangent")
sinh = _unary("sinh", "hyperbolic sine")
cosh = _unary("cosh", "hyperbolic cosine")
tanh = _unary("tanh", "hyperbolic tangent")
asinh = _unary("asinh", "inverse hyperbolic sine")
acosh = _unary("acosh", "inverse hyperbolic cosine")
atanh = _unary("atanh", "inverse hyperbolic tangent")
erf = _unary("erf", "error function")
erfc = _unary("erfc", "complementary error function, 1 - erf(x)")
abs = _unary("abs", "absolute value")
floor = _unary("floor", "largest integer <= x")
ceil = _unary("ceil", "smallest integer >= x")
round = _unary("round", "nearest integer, halfway cases away from zero (C's round)")

atan2 = _binary("atan2", "y, x", "angle of the point (x, y), in (-pi, pi]")
min = _binary("min", "a, b", "the smaller argument; NaN if either is NaN (IEEE 754-2019 minimum)")
max = _binary("max", "a, b", "the larger argument; NaN if either is NaN (IEEE 754-2019 maximum)")
copysign = _binary("copysign", "a, b", "|a| with the sign of b")
eq = _binary("eq", "a, b", "condition a == b (1.0 or 0.0)")
ne = _binary("ne", "a, b", "condition a != b (1.0 or 0.0)")
lt = _binary("lt", "a, b", "condition a < b, same as the operator")
le = _binary("le", "a, b", "condition a <= b, same as the operator")
gt = _binary("gt", "a, b", "condition a > b, same as the operator")
ge = _binary("ge", "a, b", "condition a >= b, same as the operator")
logical_and = _binary("logical_and", "a, b", "true where both are non-zero; same as a & b")
logical_or = _binary("logical_or", "a, b", "true where either is non-zero; same as a | b")


def logical_not(a: Operand) -> Expr:
    """True (1.0) where ``a`` is zero; same as ``~a``.

    >>> logical_not(x > 0)  # doctest: +SKIP
    ~(x > 0)
    """
    return _native.apply("not", a)


def where(cond: Operand, a: Operand, b: Operand) -> Expr:
    """``a`` where ``cond`` is non-zero (NaN counts as true, as in C), else ``b``.

    Both branches are evaluated (branch-free code); a NaN in the branch not taken does
    not leak into the result.

    >>> where(x > 0, sqrt(x), 0)  # doctest: +SKIP
    """
    if isinstance(cond, bool):
        raise ExpressionError(
            f"where() got the Python bool {cond} as its condition, so it would always pick one branch; "
            "`==` and `!=` between expressions compare their structure: use eq(a, b) or ne(a, b) for a condition"
        )
    return _native.apply("where", cond, a, b)


def piecewise(*pieces: tuple[Operand, Operand | bool]) -> Expr:
    """``piecewise((a, c1), (b, c2), ..., (z, True))``: the value of the first piece
    whose condition holds; NaN where none does (as in SymPy).

    >>> piecewise((-x, x < 0), (x, True))  # doctest: +SKIP
    where(x < 0, -x, x)
    """
    if not pieces:
        raise ArgumentTypeError("piecewise() needs at least one (value, condition) pair")
    for i, p in enumerate(pieces):
        if not (isinstance(p, tuple) and len(p) == 2):
            raise ArgumentTypeError(f"piecewise() argument {i} must be a (value, condition) pair, got {p!r}")
    result: Operand = float("nan")
    for value, cond in reversed(pieces):
        if cond is True:
            result = value
        elif cond is not False:
            result = where(cond, value, result)
    if not isinstance(result, Expr):
        raise ArgumentTypeError("piecewise() needs at least one alkahest expression among its values or conditions")
    return result


__all__ = [
    "sqrt",
    "cbrt",
    "exp",
    "expm1",
    "log",
    "log1p",
    "log2",
    "log10",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "tanh",
    "asinh",
    "acosh",
    "atanh",
    "erf",
    "erfc",
    "abs",
    "floor",
    "ceil",
    "round",
    "atan2",
    "min",
    "max",
    "copysign",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "logical_and",
    "logical_or",
    "logical_not",
    "where",
    "piecewise",
]
