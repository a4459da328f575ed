"""Expressions from text: :func:`parse` (Python syntax, parsed in Rust, never evaluated)."""

from __future__ import annotations

from typing import Optional

from ._native import Expr, ExprPool
from .errors import ArgumentTypeError


def parse(text: str, pool: Optional[ExprPool] = None) -> Expr:
    """The expression ``text`` denotes, in ``pool`` (a new pool by default).

    Python syntax: numbers (``2``, ``1e-3``, ``1_000``), ``+ - * / // % **``,
    comparisons (chained like Python's), ``&``/``and``, ``|``/``or``, ``~``/``not``, and
    calls of alkahest's functions under their own or NumPy's names (``arcsin``,
    ``arctan2``, ``absolute``, ``minimum``, ...), ``where(c, a, b)``, ``min``/``max`` of
    two or more arguments, ``sign``, ``trunc``, ``rint``, ``isnan``, ``isinf``,
    ``isfinite``, ``signbit``, ``square``, ``exp2``. Names are symbols, made on first
    use, except the constants ``pi``, ``inf``, ``nan``, ``True`` and ``False``.
    ``a // b`` is ``floor(a / b)`` and ``a % b`` is ``a - floor(a / b) * b`` (NumPy's
    sign convention).

    Nothing is evaluated: the parser only builds nodes. Input of any length or
    nesting is parsed or refused (at most 10**8 bytes and 100,000 levels of
    parentheses) without deep recursion. A mistake raises :class:`ParseError` with a
    caret under its position.

    >>> e = parse("sin(x)*cos(y) + exp(-x**2)")
    >>> e, sorted(s.name for s in e.free_symbols())
    (sin(x)*cos(y) + exp(-x**2), ['x', 'y'])
    >>> parse("x +* 2")
    Traceback (most recent call last):
      ...
    alkahest.errors.ParseError: expected a number, a name or '(' here, found '*' (at position 3)
        x +* 2
           ^
    """
    if pool is None:
        pool = ExprPool()
    if not isinstance(text, str):
        raise ArgumentTypeError(f"parse() takes the expression as a str, got {type(text).__name__}")
    return pool.parse(text)
