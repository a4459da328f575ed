"""Code for embedding alkahest's functions elsewhere (C99 source, StableHLO) and the
Horner rewrite."""

from __future__ import annotations

import re
from typing import Sequence

from . import _native
from ._native import Expr
from .compile import Exprs, Vars, normalise
from .errors import ArgumentError


def emit_c(
    expr_or_list: Exprs,
    vars: Vars,
    fn_name: str = "f",
    *,
    bulk: bool = False,
    single: bool = False,
    header: bool = False,
) -> str:
    """C99 source computing the expression(s), with ``vars`` as parameters in order.

    One output gives ``double f(double x, double y)``; several give
    ``void f(double x, double y, double *out)``. ``bulk=True`` gives a loop over arrays,
    ``void f(const double *x, const double *y, double *out0, ..., long count)``;
    ``single=True`` uses ``float`` and the ``f``-suffixed functions; ``header=True``
    makes the functions ``static inline``. Common subexpressions are computed once,
    constants print exactly, and symbol names become safe, unique C identifiers
    (``"x; system(...)"`` becomes ``x__system_...``). Compiled with ``-std=c99`` (no
    FP contraction) the function returns the interpreter's results bit for bit on
    arithmetic; functions are the C library's.

    >>> print(emit_c(x * y + ak.sin(x), [x, y]))  # doctest: +SKIP
    #include <math.h>
    double f(double x, double y) {
        const double t2 = x * y;
        const double t3 = sin(x);
        const double t4 = t2 + t3;
        return t4;
    }
    """
    outputs, inputs = normalise(expr_or_list, vars)
    tape = _native.lower(outputs, inputs)
    names = [v.name or f"arg{i}" for i, v in enumerate(inputs)]
    return _native.emit_c(tape, names, fn_name, bulk, single, header)


def to_stablehlo(expr_or_list: Exprs, vars: Vars, fn_name: str = "main", shape: Sequence[int] = ()) -> str:
    """Textual MLIR in the StableHLO dialect: a module with ``func.func @fn_name`` taking
    one tensor per input and returning one per output, elementwise over tensors of
    ``shape`` (``()``: scalars, ``tensor<f64>``). Functions StableHLO lacks (``erf``,
    ``asin``, ``sinh``, ...) use the CHLO dialect XLA accepts beside it.

    >>> print(to_stablehlo(x * y, [x, y]))  # doctest: +SKIP
    module @alkahest {
      func.func public @main(%arg0: tensor<f64>, %arg1: tensor<f64>) -> (tensor<f64>) {
        %t1 = "stablehlo.multiply"(%arg0, %arg1) : (tensor<f64>, tensor<f64>) -> tensor<f64>
        "func.return"(%t1) : (tensor<f64>) -> ()
      }
    }
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", fn_name):
        raise ArgumentError(f"fn_name must be an identifier ([A-Za-z_][A-Za-z0-9_]*), got {fn_name!r}")
    dims = [int(d) for d in shape]
    if any(d < 1 for d in dims):
        raise ArgumentError(f"shape must hold positive sizes, got {tuple(shape)!r}")
    outputs, inputs = normalise(expr_or_list, vars)
    return _native.to_stablehlo(_native.lower(outputs, inputs), fn_name, dims)


def horner(expr: Expr, var: Expr) -> Expr:
    """``expr``, a polynomial in the symbol ``var``, rewritten in Horner form:
    ``c0 + c1*x + c2*x**2`` becomes ``(c2*x + c1)*x + c0``. Coefficients may be any
    expressions free of ``var``. The result is an ordinary expression (compile it like
    any other); a dense polynomial of degree n takes n multiplications and n additions.
    Raises :class:`ExpressionError` if ``expr`` is not a polynomial in ``var``.

    >>> horner(3*x**2 + y*x - 1, x)  # doctest: +SKIP
    (3*x + y)*x - 1
    """
    return _native.horner(expr, var)
