"""The entry points most code uses: ``compile_expr`` and ``eval_expr``."""

from __future__ import annotations

from typing import Mapping, Optional, Tuple, Union

from ._native import CompiledFn, Expr
from .cache import CompileCache, default_cache
from . import _native
from .compile import Exprs, Vars, normalise_shaped, rewritten, shaped, var_names
from .config import DEFAULT_CONFIG, CompileConfig, checked
from .dispatch import build, remember_optimization, resolve
from .errors import ArgumentTypeError


def compile_expr(
    expr_or_list: Exprs,
    vars: Vars,
    config: Optional[CompileConfig] = None,
    *,
    cache: Union[CompileCache, bool, None] = None,
) -> CompiledFn:
    """Compiles one expression (the callable returns a float), a list of them (a tuple),
    or an array of them (a NumPy array of expressions, or nested lists: calls return
    arrays of that shape, ``numpy_eval`` one array of shape ``(*output_shape, *points)``)
    with ``vars`` as the inputs, in order.

    The tier follows ``config`` (default ``CompileConfig()``: ``tier="auto"``): see
    :mod:`alkahest.dispatch`. Without ``expected_evals``/``expected_calls`` the function
    is adaptive: it starts on the interpreter and compiles faster tiers as its use pays
    for them; ``alkahest.explain(f)`` says what it decided and why.

    ``cache``: a :class:`CompileCache`; ``None`` uses ``alkahest.default_cache``; ``False``
    compiles afresh.

    >>> pool = ExprPool(); x, y = pool.symbols("x y")  # doctest: +SKIP
    >>> f = compile_expr(x**2 + sin(y), [x, y])  # doctest: +SKIP
    >>> f(3.0, 0.0), f([3.0, 0.0])  # doctest: +SKIP
    (9.0, 9.0)
    """
    config = checked(config)
    if cache is False:
        outputs, inputs, shape = normalise_shaped(expr_or_list, vars)
        outputs, optimized = rewritten(outputs, inputs, config)
        tape = _native.lower(outputs, inputs, fastmath=config.fastmath)
        fn = shaped(build(tape, var_names(inputs), config, resolve(lambda: tape, config)), shape)
        return remember_optimization(fn, optimized)
    if cache is None or cache is True:
        cache = default_cache
    return cache.compile(expr_or_list, vars, config)


def eval_expr(expr_or_list: Exprs, values: Mapping[Union[Expr, str], float]) -> Union[float, Tuple[float, ...]]:
    """Evaluates at one point given as ``{symbol: value}`` (symbols or their names).

    >>> eval_expr(x**2 + y, {x: 3.0, y: 1.0})  # doctest: +SKIP
    10.0
    """
    if not isinstance(values, Mapping):
        raise ArgumentTypeError(f"values must be a mapping {{symbol: value}}, got {type(values).__name__}")
    f = default_cache.compile(expr_or_list, list(values.keys()), DEFAULT_CONFIG)
    return f(*values.values())  # type: ignore[return-value] # scalars in, floats out
