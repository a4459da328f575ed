"""From expressions to a :class:`CompiledFn`: argument checking, lowering, tier choice."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import CompiledFn, Expr, Tape
from . import tiers
from .config import DISABLE_ENV, CompileConfig, disabled_tiers
from .errors import ArgumentTypeError, ArityError, CompileError, InvalidVarsError, ShapeError

Exprs = Union[Expr, Sequence[Expr]]
Vars = Union[Expr, str, Sequence[Union[Expr, str]]]


def output_shape(expr_or_list: object) -> Optional[Tuple[int, ...]]:
    """The shape of the outputs when they are given as an array: a NumPy array of
    expressions, or lists (or tuples) nested two or more deep, rectangular. Calls then
    return arrays of that shape. None for one expression or a flat list (calls return a
    float, or a tuple of floats)."""
    if isinstance(expr_or_list, np.ndarray):
        return tuple(expr_or_list.shape) if expr_or_list.ndim else None
    if not isinstance(expr_or_list, (list, tuple)) or not any(isinstance(e, (list, tuple)) for e in expr_or_list):
        return None
    shape: List[int] = []
    level: list = [expr_or_list]
    while all(isinstance(e, (list, tuple)) for e in level):
        sizes = {len(e) for e in level}
        if len(sizes) != 1:
            raise ShapeError(f"the nested lists of outputs are not rectangular: lengths {sorted(sizes)} at depth {len(shape)}")
        shape.append(sizes.pop())
        level = [item for e in level for item in e]
    if any(isinstance(e, (list, tuple)) for e in level):
        raise ShapeError(f"the nested lists of outputs are not rectangular: lists and expressions mix at depth {len(shape)}")
    return tuple(shape)


def normalise(expr_or_list: Exprs, vars: Vars) -> Tuple[List[Expr], List[Expr]]:
    """Outputs (flattened, for an array of them) and input symbols as lists; symbol
    names in ``vars`` become symbols."""
    outputs, inputs, _ = normalise_shaped(expr_or_list, vars)
    return outputs, inputs


def normalise_shaped(expr_or_list: Exprs, vars: Vars) -> Tuple[List[Expr], List[Expr], Optional[Tuple[int, ...]]]:
    """:func:`normalise`, and the :func:`output_shape` of the outputs."""
    shape = None if isinstance(expr_or_list, Expr) else output_shape(expr_or_list)
    if isinstance(expr_or_list, Expr):
        outputs = [expr_or_list]
    elif shape is not None:
        outputs = list(np.asarray(expr_or_list, dtype=object).ravel())
    elif isinstance(expr_or_list, (list, tuple)):
        outputs = list(expr_or_list)
    else:
        raise ArgumentTypeError(
            f"expected an alkahest expression or a list of them, got {type(expr_or_list).__name__}; "
            "numbers must be built into an expression first (e.g. pool.constant(2.0))"
        )
    if not outputs:
        raise ArityError("nothing to compile: give at least one output expression")
    for i, e in enumerate(outputs):
        if not isinstance(e, Expr):
            raise ArgumentTypeError(f"output {i} is a {type(e).__name__}, not an alkahest expression")
    pool = outputs[0].pool
    if isinstance(vars, (Expr, str)):
        vars = [vars]
    if isinstance(vars, (set, frozenset)):
        raise InvalidVarsError("vars must be ordered (a list or tuple): a set's order is arbitrary, "
                               "so the arguments would not match the symbols you meant")
    try:
        var_list = list(vars)
    except TypeError:
        raise InvalidVarsError(f"vars must be a list of symbols, e.g. [x, y]; got {type(vars).__name__}") from None
    inputs = []
    for i, v in enumerate(var_list):
        if isinstance(v, str):
            v = pool.symbol(v)
        elif not isinstance(v, Expr):
            raise InvalidVarsError(f"vars[{i}] is a {type(v).__name__}, not a symbol; vars must list symbols, e.g. [x, y]")
        inputs.append(v)
    return outputs, inputs, shape


def shaped(fn: CompiledFn, shape: Optional[Tuple[int, ...]]) -> CompiledFn:
    """``fn``, returning its outputs as arrays of ``shape`` (None: as they are)."""
    if shape is not None:
        fn._set_output_shape(list(shape))
    return fn


def lower(expr_or_list: Exprs, vars: Vars, fastmath: bool = False) -> Tape:
    """The tape (shared IR) for the expressions, with ``vars`` as inputs in order;
    ``fastmath=True``: the tape ``CompileConfig(fastmath=True)`` compiles (plain integer
    powers, sums and products regrouped so that terms they share are computed once).

    >>> from alkahest import ExprPool, sin
    >>> x, y = ExprPool().symbols("x y")
    >>> t = lower(x**2 + sin(y), [x, y])
    >>> t.instructions()[:3]
    [('input', (), 0), ('input', (), 1), ('mul', (0, 0), -1)]
    >>> a, b, c, d, e = ExprPool().symbols("a b c d e")
    >>> two = [a * b * c * d, c * b * (a * e)]  # share nothing as written
    >>> lower(two, [a, b, c, d, e]).n_ops, lower(two, [a, b, c, d, e], fastmath=True).n_ops
    (6, 4)
    """
    outputs, inputs = normalise(expr_or_list, vars)
    return _native.lower(outputs, inputs, fastmath=bool(fastmath))


def compile_tier(tape: Tape, names: List[str], config: CompileConfig, tier: str, fallback_reason: Optional[str] = None,
                 into: Optional[CompiledFn] = None) -> CompiledFn:
    """Compiles ``tape`` for exactly ``tier``; raises :class:`CompileError` if that tier
    cannot compile it. ``into``: see :class:`alkahest.tiers.Tier`."""
    return tiers.get(tier).compile(tape, names, config, fallback_reason, into=into)


def var_names(inputs: List[Expr]) -> List[str]:
    return [v.name or str(v) for v in inputs]


def compile_with_fallback(tape: Tape, names: List[str], config: CompileConfig, tier: str) -> CompiledFn:
    """Compiles for ``tier``, falling back to each cheaper enabled tier in turn; the
    reasons accumulate in ``f.fallback_reason``."""
    reasons: List[str] = []
    for t in tiers.HOST[: tiers.rank(tier) + 1][::-1]:
        if not t.floor and t.name in disabled_tiers():
            reasons.append(f"{t.name}: disabled by ${DISABLE_ENV}")
            continue
        try:
            return t.compile(tape, names, config, "; ".join(reasons) or None)
        except CompileError as e:
            if t.floor:
                raise
            reasons.append(f"{t.name}: {e}")
    raise AssertionError("the floor tier is always reached")


def rewritten(outputs: List[Expr], inputs: List[Expr], config: CompileConfig) -> Tuple[List[Expr], Any]:
    """The outputs after ``alkahest.optimize`` when ``config.optimize`` asks for it, and
    its report (None when not asked)."""
    if config.optimize is None:
        return outputs, None
    from .optimizer import optimize

    better, report = optimize(list(outputs), list(inputs), config.optimize, measure=False)
    return list(better), report
