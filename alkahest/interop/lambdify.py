"""``lambdify``: SymPy's ``lambdify`` calling conventions on alkahest's compiled code.

``from alkahest import lambdify`` in place of ``from sympy import lambdify``: the same
``args`` (a symbol, a list, nested lists unpacked like SymPy's), the same ``expr``
structures (scalar, list, tuple, ``Matrix``, nested), the same results for scalar and
array inputs. Underneath, every entry of ``expr`` is one output of one compiled
function, so a 1,000-entry matrix is one fused kernel that computes each shared
sub-expression once.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

from .._native import Expr, ExprPool
from ..api import compile_expr
from ..batch import numpy_eval
from ..config import CompileConfig
from ..errors import ArgumentTypeError, ArityError, ConversionError
from .sympy import _is_matrix, _library, _matrix_rows
from .walker import Converter, short

# A template mirrors the structure of ``expr``: ("leaf", index, is_bool), ("list", items),
# ("tuple", items) or ("matrix", shape, first_index) for a matrix whose entries are the
# outputs first_index, first_index + 1, ... in row-major order.
Template = Tuple[Any, ...]
_SCALARS = (float, int, np.floating, np.integer)


def _is_boolean(obj: Any) -> bool:
    """Whether SymPy/symengine ``obj`` is a condition (SymPy's symbols are Booleans too)."""
    names = {c.__name__ for c in type(obj).__mro__}
    return isinstance(obj, bool) or ("Boolean" in names and not names & {"Symbol", "AtomicExpr"})


class _Outputs:
    """Collects the scalar entries of ``expr`` as outputs, in order."""

    def __init__(self, convert: Callable[[Any], Expr]) -> None:
        self.convert = convert
        self.exprs: List[Expr] = []

    def leaf(self, obj: Any) -> Template:
        self.exprs.append(self.convert(obj))
        return ("leaf", len(self.exprs) - 1, _is_boolean(obj))

    def template(self, obj: Any) -> Template:
        if isinstance(obj, list):
            return ("list", [self.template(o) for o in obj])
        if isinstance(obj, tuple):
            return ("tuple", [self.template(o) for o in obj])
        if _is_matrix(obj):
            first = len(self.exprs)
            for row in _matrix_rows(obj):
                for v in row:
                    self.exprs.append(self.convert(v))
            return ("matrix", tuple(obj.shape), first)
        return self.leaf(obj)


def _arg_template(args: Any, symbols: List[Any]) -> Template:
    """The structure of ``args`` (nested lists and tuples are unpacked from the call's
    arguments, as SymPy does), collecting the symbols in order."""
    if isinstance(args, (list, tuple)) or _is_matrix(args):
        items = _matrix_rows(args) if _is_matrix(args) else args
        if _is_matrix(args):
            items = [v for row in items for v in row]
        return ("seq", [_arg_template(a, symbols) for a in items])
    symbols.append(args)
    return ("leaf", len(symbols) - 1)


def _unpack(template: Template, value: Any, out: List[Any], where: str) -> None:
    if template[0] == "leaf":
        out.append(value)
        return
    items = template[1]
    try:
        values = list(value)
    except TypeError:
        raise ArityError(f"{where} must be a sequence of {len(items)} values (as in lambdify's args), "
                         f"got {type(value).__name__}") from None
    if len(values) != len(items):
        raise ArityError(f"{where} must hold {len(items)} values (as in lambdify's args), got {len(values)}")
    for k, (t, v) in enumerate(zip(items, values)):
        _unpack(t, v, out, f"{where}[{k}]")


def _rebuild(template: Template, results: Sequence[Any]) -> Any:
    kind = template[0]
    if kind == "leaf":
        value = results[template[1]]
        if template[2]:
            return value.astype(bool) if isinstance(value, np.ndarray) else bool(value)
        return value
    if kind == "list":
        return [_rebuild(t, results) for t in template[1]]
    if kind == "tuple":
        return tuple(_rebuild(t, results) for t in template[1])
    shape, first = template[1], template[2]
    size = int(np.prod(shape))
    block = results[first:first + size]
    if isinstance(block, np.ndarray):  # rows of one output buffer: a view
        return block.reshape(shape + block.shape[1:])
    return np.array(block, dtype=float).reshape(shape)


def lambdify(
    args: Any,
    expr: Any,
    modules: Any = None,
    printer: Any = None,
    use_imps: bool = True,
    dummify: bool = False,
    cse: Any = False,
    docstring_limit: Optional[int] = 1000,
    *,
    config: Optional[CompileConfig] = None,
) -> Callable[..., Any]:
    """A fast numerical function for a SymPy (or symengine) expression, called like the
    function ``sympy.lambdify(args, expr)`` returns.

    ``args``: a symbol or a (nested) list or tuple of symbols; the function takes one
    argument per top-level entry, a nested entry as a sequence unpacked like SymPy
    does (``lambdify([x, (y, z)], e)`` is called as ``f(1.0, (2.0, 3.0))``). Functions
    of time (``dynamicsymbols``) and their derivatives may be arguments.
    ``expr``: an expression, or a (nested) list, tuple or ``Matrix`` of them.

    Called with numbers it returns floats (``bool`` for a condition); with arrays (or
    a mix of arrays and numbers, broadcast like NumPy) it returns arrays. Lists and
    tuples keep their structure; a ``Matrix`` becomes an ``ndarray`` of its shape,
    followed by the points' axes for array inputs (as SymPy's does). Unlike SymPy's,
    a constant entry is broadcast to the points' shape.

    All entries are outputs of one compiled function (``f.compiled``, a
    :class:`CompiledFn`; ``config`` chooses its tier as in :func:`compile_expr`), so
    sub-expressions shared between entries are computed once. ``modules``, ``printer``,
    ``use_imps``, ``dummify`` and ``cse`` are accepted for compatibility and ignored:
    alkahest computes in float64 with its own kernels and always shares common
    sub-expressions. ``docstring_limit`` bounds the expression text in ``f.__doc__``.

    >>> import sympy
    >>> x, y = sympy.symbols("x y")
    >>> f = lambdify([x, y], sympy.Matrix([[x * y, sympy.sin(x)], [y, 1]]))
    >>> f(2.0, 3.0)
    array([[6.        , 0.90929743],
           [3.        , 1.        ]])
    >>> f(np.array([1.0, 2.0]), 3.0).shape
    (2, 2, 2)
    """
    del modules, printer, use_imps, dummify, cse  # accepted for compatibility
    pool = ExprPool()
    converters: dict = {}

    def convert(obj: Any) -> Expr:
        if isinstance(obj, bool):
            return pool.constant(float(obj))
        if isinstance(obj, (int, float)):
            return pool.constant(float(obj))
        if isinstance(obj, Expr):
            raise ConversionError("lambdify takes SymPy or symengine expressions; for alkahest expressions use compile_expr")
        dialect = _library(obj)
        if dialect is None:
            raise ConversionError(f"{type(obj).__name__} is not a SymPy or symengine expression: {short(obj)}")
        conv = converters.get(id(dialect))
        if conv is None:
            conv = converters[id(dialect)] = Converter(dialect, pool)
        out = conv.convert(obj)
        if not isinstance(out, Expr):
            raise ConversionError(f"{type(obj).__name__} is not a scalar expression: {short(obj)}")
        return out

    symbols: List[Any] = []
    if isinstance(args, str):
        raise ArgumentTypeError("lambdify's args must be SymPy symbols (or nested lists of them), not a string; "
                        "use sympy.symbols(...)")
    arg_template = _arg_template(args, symbols)
    arg_items = arg_template[1] if arg_template[0] == "seq" else [arg_template]
    outputs = _Outputs(convert)
    out_template = outputs.template(expr)
    inputs = []
    for i, s in enumerate(symbols):
        e = convert(s)
        if e.op != "symbol":
            raise ConversionError(f"lambdify's args must be symbols (or functions of time); argument {i} is {short(s)}")
        inputs.append(e)
    exprs = outputs.exprs or [pool.constant(0.0)]
    fn = compile_expr(exprs, inputs, config)
    n_args, n_out = len(arg_items), len(outputs.exprs)
    flat_args = all(t[0] == "leaf" for t in arg_items)
    single = out_template[0] == "leaf"

    def unpack(call_args: Tuple[Any, ...]) -> List[Any]:
        if len(call_args) != n_args:
            raise ArityError(f"this function takes {n_args} argument{'s' * (n_args != 1)} (lambdify's args), "
                             f"got {len(call_args)}")
        if flat_args:
            return list(call_args)
        flat: List[Any] = []
        for k, (t, v) in enumerate(zip(arg_items, call_args)):
            _unpack(t, v, flat, f"argument {k}")
        return flat

    def arrays_of(flat: List[Any]) -> Optional[List[np.ndarray]]:
        """The arguments as arrays if any is one (else None: a scalar call)."""
        if all(isinstance(v, _SCALARS) for v in flat):
            return None
        return [np.asarray(v) for v in flat]

    def evaluate(call_args: Tuple[Any, ...]) -> Any:
        """Every output: a list of floats, or an array (n_outputs, *points)."""
        flat = unpack(call_args)
        arrays = arrays_of(flat)
        if arrays is None:
            values: Any = fn(*flat)
            return [values] if n_out == 1 else list(values)
        shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
        buffer = np.empty((max(n_out, 1),) + shape)
        numpy_eval(fn, *arrays, out=buffer[0] if n_out == 1 else buffer)
        return buffer

    if out_template[0] == "matrix" and int(np.prod(out_template[1])) == n_out > 0:
        matrix_shape = out_template[1]

        def function(*call_args: Any) -> Any:
            # A Matrix as the whole result: computed straight into the array returned.
            flat = unpack(call_args)
            if arrays_of(flat) is None:
                return fn(*flat, out=np.empty(matrix_shape))
            return _rebuild(out_template, evaluate(call_args))

    elif single:
        is_bool = out_template[2]

        def function(*call_args: Any) -> Any:
            value = fn(*unpack(call_args))
            if is_bool:
                return value.astype(bool) if isinstance(value, np.ndarray) else bool(value)
            return value

    else:

        def function(*call_args: Any) -> Any:
            return _rebuild(out_template, evaluate(call_args))

    function.__name__ = function.__qualname__ = "_lambdifygenerated"
    function.__doc__ = _docstring(args, exprs, n_out, docstring_limit)
    function.compiled = fn  # type: ignore[attr-defined]
    return function


def _docstring(args: Any, exprs: List[Expr], n_out: int, limit: Optional[int]) -> str:
    text = "; ".join(repr(e) for e in exprs[:8]) + (f"; ... ({n_out} outputs)" if n_out > 8 else "")
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 3)] + "..."
    return f"Created with alkahest.lambdify.\n\nSignature: func({short(args, 200)})\n\nExpression: {text}\n"
