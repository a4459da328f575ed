"""``evaluate``: numexpr's ``evaluate`` on alkahest's compiled kernels.

``import alkahest as ne; ne.evaluate("2*a + 3*b")`` works for real-valued numexpr
code: the same signature and defaults, variables found in the caller's frame, the same
function names (plus ``erf``, ``erfc``, ``cbrt``, ... that numexpr lacks), comparisons
giving bool arrays, ``out=`` returned as given (it may alias an input), Fortran order
kept for Fortran inputs.

numexpr types each operation (bool, int32, int64, float32, float64, complex) and
computes in that type; alkahest computes in float64. Where that gives numexpr's dtype
and values (every float64 computation, conditions on any real inputs, integers and
float32 values converted to float64 before any arithmetic on them), ``evaluate``
returns them; where numexpr would compute in integers or float32 (``a + b`` of two
int arrays, ``a * 2`` of a float32 array) or in complex numbers, it raises
:class:`EvaluateError` saying so, rather than returning a different dtype.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .. import _native
from .._native import CompiledFn, Expr, ExprPool
from ..api import compile_expr
from ..config import CompileConfig
from ..batch import numpy_eval
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, EvaluateError, ShapeError, UnboundSymbolError

# numexpr's kinds, in its order of promotion.
_RANK = ("bool", "int", "long", "float", "double", "complex")
_MAX_INT32 = 2**31 - 1


def _common(kinds: Sequence[str]) -> str:
    return max(kinds, key=_RANK.index)


def _kind_of(value: Any) -> str:
    """numexpr's kind of a variable's value (numexpr's ``getType``)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -_MAX_INT32 - 1 <= value <= _MAX_INT32 else "long"
    if isinstance(value, float):
        return "double"
    dtype = np.asarray(value).dtype
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return "bool"
    if kind in "iu":
        return "long" if size > 4 or (kind == "u" and size == 4) else "int"
    if kind == "f":
        return "double" if size > 4 else "float"
    if kind == "c":
        return "complex"
    return "string"


@dataclass(frozen=True)
class _Func:
    """A numexpr function: the alkahest function it builds, its argument count, and
    numexpr's typing: the common kind of the arguments, float64 for integers, then at
    least ``minkind`` and at most ``maxkind``; ``condition``: a bool result; ``same``:
    the arguments' kind unchanged; ``keeps_int``: integers stay integers."""

    build: str
    arity: int
    minkind: Optional[str] = "float"
    maxkind: Optional[str] = None
    condition: bool = False
    same: bool = False
    keeps_int: bool = False


def _funcs(names: str, build: Optional[str] = None, arity: int = 1, **kw: Any) -> Dict[str, _Func]:
    return {n: _Func(build or n, arity, **kw) for n in names.split()}


# numexpr's function table (expressions.py), then the functions numexpr lacks.
_FUNCS: Dict[str, _Func] = {
    **_funcs("sin cos tan sinh cosh tanh arcsin arccos arctan arcsinh arccosh arctanh sqrt exp expm1 log log1p "
             "log2 log10 abs"),
    **_funcs("ceil floor", maxkind="double"),
    "trunc": _Func("trunc", 1, minkind="double"),
    "sign": _Func("sign", 1, minkind="double", keeps_int=True),
    "round": _Func("rint", 1, minkind="double", keeps_int=True),
    "arctan2": _Func("atan2", 2), "copysign": _Func("copysign", 2, minkind="double"),
    "maximum": _Func("max", 2, minkind="double"), "minimum": _Func("min", 2, minkind="double"),
    **_funcs("isnan isinf isfinite signbit", minkind="double", condition=True),
    "where": _Func("where", 3, same=True), "copy": _Func("copy", 1, same=True),
    "ones_like": _Func("ones_like", 1, same=True),
    **_funcs("erf erfc cbrt asin acos atan asinh acosh atanh exp2 square"),
    "rint": _Func("rint", 1, minkind="double"),
    "atan2": _Func("atan2", 2), "pow": _Func("pow", 2),
}

_REFUSED = {
    "sum": "a reduction", "prod": "a reduction", "min": "a reduction in numexpr (use minimum(a, b))",
    "max": "a reduction in numexpr (use maximum(a, b))", "real": "complex", "imag": "complex", "conj": "complex",
    "complex": "complex", "contains": "a string operation", "fmod": "not implemented by alkahest yet",
    "hypot": "not implemented by alkahest yet", "nextafter": "not implemented by alkahest yet",
}

_CONSTANTS = {"pi": float(np.pi), "inf": float("inf"), "nan": float("nan")}
_ARITHMETIC = {"add", "sub", "mul", "floordiv", "mod", "pow", "neg", "pos"}
_EXACT_INTEGER_OPS = {"add", "sub", "mul", "neg", "pos"}


# Integer results are exact in float64 while every integer intermediate stays within these
# (numexpr's int32 wraps at 2**31; float64 holds integers exactly up to 2**53).
_EXACT_LIMIT = {"int": 2**31, "long": 2**53, "bool": 1}
_DTYPES = {"double": np.dtype(np.float64), "bool": np.dtype(np.bool_), "int": np.dtype(np.int32),
           "long": np.dtype(np.int64)}


@dataclass
class _Compiled:
    fn: CompiledFn
    names: Tuple[str, ...]
    dtype: np.dtype
    # For integer arithmetic: (node, op, children, kind, constant bound or variable name),
    # in an order where children come first; checked at each call (see _check_bounds).
    bounds: Tuple[Tuple[int, str, Tuple[int, ...], str, Any], ...] = ()

    def check_bounds(self, program: "_Program", arrays: Dict[str, np.ndarray]) -> None:
        """Raises unless every integer intermediate is exact in float64 for these inputs
        (bounds of |value| propagated from the inputs' largest magnitudes)."""
        bound: Dict[int, float] = {}
        for node, op, children, kind, extra in self.bounds:
            b = [bound[c] for c in children]
            if op == "var":
                a = arrays[extra]
                value = float(max(abs(int(a.max())), abs(int(a.min())))) if a.size and a.dtype.kind != "b" else 1.0
            elif op == "const":
                value = extra
            elif op in ("add", "sub"):
                value = b[0] + b[1]
            elif op == "mul":
                value = b[0] * b[1]
            elif op == "where":
                value = max(b[1], b[2])
            elif op == "sign":
                value = 1.0
            else:  # neg, pos, copy, rint, and conditions (bound 1)
                value = b[0] if b else 1.0
            bound[node] = value
            if value > _EXACT_LIMIT[kind]:
                raise program.error(program.nodes[node], (
                    f"numexpr computes this in {'int32' if kind == 'int' else 'int64'} arithmetic, and with these "
                    f"inputs its values may reach {value:.3g}, beyond what alkahest's float64 gives exactly "
                    f"({'where int32 wraps around' if kind == 'int' else '2**53'}); convert the inputs with "
                    ".astype(np.float64), or use numexpr for this expression"))


class _Program:
    """One expression string: its syntax tree and the names it reads."""

    def __init__(self, ex: str) -> None:
        self.ex = ex
        self.nodes = _native.parse_syntax_tree(ex)
        names: List[str] = []
        for kind, value, _, _, _ in self.nodes:
            if kind == "name" and value is not None and value not in names and value not in ("True", "False", "None"):
                names.append(value)
        self.names = tuple(names)

    def error(self, node: Tuple[Any, ...], message: str) -> EvaluateError:
        start = node[3]
        caret = " " * (4 + start) + "^"
        return EvaluateError(f"{message} (at position {start})\n    {self.ex}\n{caret}")

    def compile(self, kinds: Mapping[str, str]) -> _Compiled:
        """Checks numexpr's types for ``kinds`` of the variables and builds the function."""
        pool = ExprPool()
        values: List[Any] = []  # per node: (expr or float, kind, constant?)
        variables = [n for n in self.names if n in kinds]
        for node in self.nodes:
            values.append(self._node(pool, node, values, kinds))
        expr, kind, _ = values[-1]
        if kind not in _DTYPES:
            raise self.error(self.nodes[-1], _type_message(kind))
        if not isinstance(expr, Expr):
            expr = pool.constant(float(expr))
        symbols = [pool.symbol(n) for n in variables]
        # float64 whatever the inputs: the typing above decides the result's dtype.
        fn = compile_expr(expr, symbols, CompileConfig(dtype="float64"), cache=False)
        return _Compiled(fn, tuple(variables), _DTYPES[kind], self._bound_program(values))

    def _bound_program(self, values: List[Tuple[Any, str, bool]]) -> Tuple[Tuple[int, str, Tuple[int, ...], str, Any], ...]:
        """The integer nodes whose exactness each call checks, with what they read."""
        # Every integer node, inputs included: an int64 input must be exact in float64
        # wherever it is read (comparisons too).
        integer = {i for i, (_, kind, constant) in enumerate(values) if kind in ("int", "long") and not constant}
        needed = set(integer)
        for i in integer:
            needed.update(self.nodes[i][2])
        program: List[Tuple[int, str, Tuple[int, ...], str, Any]] = []
        for i in sorted(needed):
            op, payload, children, _, _ = self.nodes[i]
            value, kind, constant = values[i]
            if constant:
                v = value.value if isinstance(value, Expr) else value
                program.append((i, "const", (), "long", abs(float(v or 0.0))))
            elif op == "name":
                program.append((i, "var", (), kind if kind != "double" else "long", payload))
            elif i in integer:
                name = _FUNCS[str(payload)].build if op == "call" else op
                program.append((i, name, tuple(children), kind, None))
            else:  # a condition read by integer arithmetic
                program.append((i, "condition", (), "bool", None))
        return tuple(program)

    def _node(self, pool: ExprPool, node: Tuple[Any, ...], values: List[Any], kinds: Mapping[str, str]) -> Tuple[Any, str, bool]:
        op, payload, children, _, _ = node
        args = [values[c] for c in children]
        if op == "int":
            v = int(payload)
            return v, ("int" if v <= _MAX_INT32 else "long"), True
        if op == "float":
            return float(payload), "double", True
        if op == "name":
            if payload in ("True", "False"):
                return payload == "True", "bool", True
            if payload in kinds:
                return pool.symbol(payload), kinds[payload], False
            return _CONSTANTS[payload], "double", True
        constant = all(a[2] for a in args)
        if op == "call":
            return self._call(pool, node, payload, args, constant)
        kind = self._kind(node, op, [a[1] for a in args], constant)
        exprs = [a[0] for a in args]
        return _build(pool, op, exprs, kind, [a[1] for a in args]), kind, constant

    def _kind(self, node: Tuple[Any, ...], op: str, kinds: List[str], constant: bool) -> str:
        if "complex" in kinds or "string" in kinds:
            raise self.error(node, _type_message("complex" if "complex" in kinds else "string"))
        if op in ("lt", "le", "gt", "ge", "eq", "ne", "and", "or", "not"):
            return "bool"
        kind = _common(kinds)
        if op == "div":
            return "double" if kind in ("bool", "int", "long") else kind
        if op in ("bitand", "bitor", "invert"):
            if kind != "bool":
                raise self.error(node, f"numexpr applies '{_SYMBOL[op]}' to {kind} values bitwise; alkahest's "
                                       "'&', '|' and '~' combine conditions (compare first, e.g. (a > 0) & (b < 1))")
            return "bool"
        if kind == "bool" and op in ("add", "mul"):
            return "bool"  # numexpr turns them into 'or' and 'and'
        if constant or op not in _ARITHMETIC or kind == "double":
            return kind
        if kind in ("int", "long") and op in _EXACT_INTEGER_OPS:
            return kind  # exact in float64 while the values stay small: checked at each call
        raise self.error(node, _type_message(kind, _SYMBOL.get(op, op)))

    def _call(self, pool: ExprPool, node: Tuple[Any, ...], name: str, args: List[Any], constant: bool) -> Tuple[Any, str, bool]:
        if name in _REFUSED:
            raise self.error(node, f"{name}() is {_REFUSED[name]}, which alkahest.evaluate does not support")
        f = _FUNCS.get(name)
        if f is None:
            raise self.error(node, f"unknown function '{name}'; functions: {', '.join(sorted(_FUNCS))}")
        if len(args) != f.arity:
            raise self.error(node, f"{name}() takes {f.arity} argument{'s' * (f.arity != 1)}, got {len(args)}")
        kinds = [a[1] for a in args]
        if "complex" in kinds or "string" in kinds:
            raise self.error(node, _type_message("complex" if "complex" in kinds else "string"))
        kind = _common(kinds)
        if f.condition:
            kind = "bool"
        elif not f.same and kind in ("int", "long"):
            kind = kind if f.keeps_int else "double"
        elif not f.same:
            if f.minkind and _RANK.index(f.minkind) > _RANK.index(kind):
                kind = f.minkind
            if f.maxkind and _RANK.index(f.maxkind) < _RANK.index(kind):
                kind = f.maxkind
        if kind == "float" and not constant:
            raise self.error(node, _type_message(kind, f"{name}()"))
        exprs = [a[0] for a in args]
        if f.build == "copy":
            return exprs[0], kind, constant
        if f.build == "ones_like":
            return 1.0, kind, True
        if not any(isinstance(e, Expr) for e in exprs):
            exprs[0] = pool.constant(float(exprs[0]))
        return _native.apply(f.build, *exprs), kind, constant


_SYMBOL = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "mod": "%", "pow": "**",
           "neg": "unary -", "pos": "unary +", "bitand": "&", "bitor": "|", "invert": "~"}


def _type_message(kind: str, what: str = "this expression") -> str:
    if kind in ("complex", "string"):
        return f"numexpr would compute with {kind} values here; alkahest computes with real numbers"
    name = {"bool": "boolean", "int": "int32", "long": "int64", "float": "float32"}[kind]
    how = "each step rounds to float32" if kind == "float" else "which alkahest's float64 cannot reproduce exactly"
    return (f"numexpr computes {what} in {name} arithmetic ({how}); alkahest computes in float64 and does not "
            "silently change the result's type or values: convert the inputs with .astype(np.float64) to compute "
            "in float64, or use numexpr for this expression")


def _build(pool: ExprPool, op: str, args: List[Any], kind: str, kinds: List[str]) -> Any:
    """The node for operator ``op`` (numexpr's meaning for ``kind``)."""
    if not any(isinstance(a, Expr) for a in args):
        args = [pool.constant(float(args[0]))] + args[1:]
    a = args[0]
    if op == "pos":
        return a
    if op == "neg":
        return -a
    if op in ("not", "invert"):
        return _native.apply("not", a)
    b = args[1]
    if kind == "bool" and op in ("add", "or", "bitor"):
        return _native.apply("or", a, b)
    if kind == "bool" and op in ("mul", "and", "bitand"):
        return _native.apply("and", a, b)
    if op == "floordiv":
        return _native.apply("floor", a / b)
    if op == "mod":
        return a - _native.apply("floor", a / b) * b  # numexpr's mod_ddd
    binary = {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b, "div": lambda: a / b,
              "pow": lambda: a**b}
    if op in binary:
        return binary[op]()
    return _native.apply(op, a, b)  # comparisons


class _Cache:
    """numexpr's expression cache: compiled functions by (expression, argument kinds),
    least recently used dropped beyond 256."""

    def __init__(self, capacity: int = 256) -> None:
        self._lock = threading.Lock()
        self._programs: "OrderedDict[str, _Program]" = OrderedDict()
        self._compiled: "OrderedDict[Tuple[str, Tuple[str, ...]], _Compiled]" = OrderedDict()
        self.capacity = capacity

    def program(self, ex: str) -> _Program:
        with self._lock:
            p = self._programs.get(ex)
            if p is not None:
                self._programs.move_to_end(ex)
                return p
        p = _Program(ex)
        with self._lock:
            self._programs[ex] = p
            while len(self._programs) > self.capacity:
                self._programs.popitem(last=False)
        return p

    def compiled(self, program: _Program, kinds: Dict[str, str]) -> _Compiled:
        key = (program.ex, tuple(kinds[n] for n in program.names if n in kinds))
        with self._lock:
            c = self._compiled.get(key)
            if c is not None:
                self._compiled.move_to_end(key)
                return c
        c = program.compile(kinds)
        with self._lock:
            self._compiled[key] = c
            while len(self._compiled) > self.capacity:
                self._compiled.popitem(last=False)
        return c


_CACHE = _Cache()


def _lookup(names: Sequence[str], local_dict: Optional[Mapping[str, Any]], global_dict: Optional[Mapping[str, Any]],
            frame: Any) -> Dict[str, Any]:
    """The values of ``names`` (numexpr's ``getArguments``): ``local_dict``, else the
    caller's locals; then ``global_dict``, else the caller's globals. Names found
    nowhere may be the constants pi, inf, nan."""
    local_dict = frame.f_locals if local_dict is None else local_dict
    global_dict = frame.f_globals if global_dict is None else global_dict
    out = {}
    for name in names:
        if name in local_dict:
            out[name] = local_dict[name]
        elif name in global_dict:
            out[name] = global_dict[name]
        elif name not in _CONSTANTS:
            raise UnboundSymbolError(f"name {name!r} is not defined (in local_dict, global_dict or the caller's frame)")
    return out


def evaluate(
    ex: str,
    local_dict: Optional[Mapping[str, Any]] = None,
    global_dict: Optional[Mapping[str, Any]] = None,
    out: Optional[np.ndarray] = None,
    order: str = "K",
    casting: str = "same_kind",
    sanitize: Optional[bool] = None,
    _frame_depth: int = 1,
    disable_cache: bool = False,
    **kwargs: Any,
) -> np.ndarray:
    """Evaluates the array expression ``ex`` elementwise, like ``numexpr.evaluate``.

    Variables are looked up in ``local_dict`` and ``global_dict``, by default the
    calling frame's locals and globals. The expression is compiled once per
    (expression, kinds of the variables) and cached. Returns a new array, or ``out``
    itself when given (``out`` may be one of the inputs). ``order``: "K" and "A" keep
    Fortran order when every array input is Fortran-ordered, "F" always computes in
    Fortran order, "C" in C order. ``casting`` applies when the result is stored in an
    ``out`` of another dtype (NumPy's rules). ``sanitize``, ``disable_cache`` and
    numexpr's other keyword arguments are accepted and ignored: alkahest's parser never
    runs code, and compiled functions are always cached.

    >>> a = np.arange(4.0); b = np.ones(4)
    >>> evaluate("2*a + 3*b")
    array([3., 5., 7., 9.])
    >>> evaluate("where(a > 1, erf(a), -b)")
    array([-1.        , -1.        ,  0.99532227,  0.99997791])
    """
    del sanitize, disable_cache, kwargs
    if not isinstance(ex, str):
        raise ArgumentTypeError(f"evaluate() takes the expression as a str, got {type(ex).__name__}")
    if order not in ("K", "A", "C", "F"):
        raise ArgumentError(f"order must be 'K', 'A', 'C' or 'F', got {order!r}")
    program = _CACHE.program(ex)
    values = _lookup(program.names, local_dict, global_dict, sys._getframe(_frame_depth))
    kinds = {n: _kind_of(v) for n, v in values.items()}
    compiled = _CACHE.compiled(program, kinds)
    arrays = [np.asarray(values[n]) for n in compiled.names]
    if compiled.bounds:
        compiled.check_bounds(program, dict(zip(compiled.names, arrays)))
    transpose = order == "F" or (order in ("K", "A") and _all_fortran(arrays))
    if transpose:
        arrays = [a.T for a in arrays]
    result = _run(compiled, arrays, None if out is None else (out.T if transpose else out), casting)
    return result.T if transpose and out is None else (out if out is not None else result)


def _all_fortran(arrays: List[np.ndarray]) -> bool:
    shaped = [a for a in arrays if a.ndim > 1]
    return bool(shaped) and all(a.flags.f_contiguous and not a.flags.c_contiguous for a in shaped)


def _run(compiled: _Compiled, arrays: List[np.ndarray], out: Optional[np.ndarray], casting: str) -> np.ndarray:
    double = compiled.dtype == np.float64
    if double and out is not None and out.dtype == np.float64 and out.flags.c_contiguous:
        numpy_eval(compiled.fn, *arrays, out=out)
        return out
    value = np.asarray(numpy_eval(compiled.fn, *arrays))
    if not double:
        value = value.astype(compiled.dtype)
    if out is None:
        return value
    if not isinstance(out, np.ndarray):
        raise DTypeError(f"out must be a NumPy array, got {type(out).__name__}")
    if out.shape != value.shape:
        raise ShapeError(f"out has shape {out.shape}, but the result has shape {value.shape}")
    try:
        np.copyto(out, value, casting=casting)  # type: ignore[arg-type] # checked by NumPy
    except TypeError as e:
        raise DTypeError(f"the result ({value.dtype}) cannot be stored in out ({out.dtype}) with casting={casting!r}: {e}") from None
    return out
