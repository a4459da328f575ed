"""From expressions to a :class:`CompiledFn`: argument checking, lowering, tier choice."""

from __future__ import annotations

from typing import List, Sequence, Tuple, Union

from . import _native
from ._native import CompiledFn, Expr, Tape
from .config import CompileConfig
from .errors import ArityError, CompileError, InvalidVarsError

Exprs = Union[Expr, Sequence[Expr]]
Vars = Union[Expr, str, Sequence[Union[Expr, str]]]


def normalise(expr_or_list: Exprs, vars: Vars) -> Tuple[List[Expr], List[Expr]]:
    """Outputs and input symbols as lists; symbol names in ``vars`` become symbols."""
    if isinstance(expr_or_list, Expr):
        outputs = [expr_or_list]
    elif isinstance(expr_or_list, (list, tuple)):
        outputs = list(expr_or_list)
    else:
        raise TypeError(
            f"expected an alkahest expression or a list of them, got {type(expr_or_list).__name__}; "
            "numbers must be built into an expression first (e.g. pool.constant(2.0))"
        )
    if not outputs:
        raise ArityError("nothing to compile: give at least one output expression")
    for i, e in enumerate(outputs):
        if not isinstance(e, Expr):
            raise TypeError(f"output {i} is a {type(e).__name__}, not an alkahest expression")
    pool = outputs[0].pool
    if isinstance(vars, (Expr, str)):
        vars = [vars]
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
    return outputs, inputs


def lower(expr_or_list: Exprs, vars: Vars) -> Tape:
    """The tape (shared IR) for the expressions, with ``vars`` as inputs in order.

    >>> t = lower(x**2 + sin(y), [x, y])  # doctest: +SKIP
    >>> t.instructions()  # doctest: +SKIP
    [('input', 0), ('input', 1), ('mul', 0, 0), ('sin', 1), ('add', 2, 3)]
    """
    outputs, inputs = normalise(expr_or_list, vars)
    return _native.lower(outputs, inputs)


def compile_uncached(outputs: List[Expr], inputs: List[Expr], config: CompileConfig, tier: str) -> CompiledFn:
    """Lowers and compiles for ``tier`` (already resolved from ``config``)."""
    tape = _native.lower(outputs, inputs)
    names = [v.name or str(v) for v in inputs]
    # Each native tier falls back to the next cheaper one; the reasons accumulate.
    reasons: List[str] = []
    if tier == "llvm":
        from .backends.llvm import compile_llvm

        try:
            return compile_llvm(tape, names, config)
        except CompileError as e:
            reasons.append(f"llvm: {e}")
        tier = "cranelift"
    if tier == "cranelift":
        try:
            return _native.compile_cranelift(tape, names, config.vector_math, "; ".join(reasons) or None)
        except CompileError as e:
            reasons.append(f"cranelift: {e}")
        tier = "interpreter"
    if tier == "interpreter":
        return _native.compile_interpreter(tape, names, config.vector_math, "; ".join(reasons) or None)
    raise AssertionError(f"resolve_tier returned unbuilt tier {tier!r}")
