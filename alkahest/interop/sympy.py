"""SymPy and symengine in, SymPy out: :func:`from_sympy` and :func:`to_sympy`.

SymPy and symengine are optional: they are imported only when an object of theirs
arrives (``from_sympy``) or one is made (``to_sympy``).

>>> import sympy
>>> import alkahest as ak
>>> x, y = sympy.symbols("x y")
>>> e = ak.from_sympy(sympy.sin(x) / y + sympy.Rational(1, 3))
>>> e
sin(x)/y + 0.3333333333333333
>>> ak.to_sympy(ak.from_sympy(x**2 + sympy.exp(y)))
x**2 + exp(y)
"""

from __future__ import annotations

import math
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .. import _native
from .._native import Expr, ExprPool
from ..errors import ArgumentTypeError, ConversionError
from .walker import Converter, Dialect, short


class SymPyDialect(Dialect):
    library = "SymPy"
    keys_by_identity = True

    def hash_is_cheap(self, obj: Any) -> bool:
        # SymPy caches most hashes, computed recursively on first use (numbers recompute
        # theirs through mpmath each time): only an object whose hash is cached is looked
        # up or stored by structure.
        return getattr(obj, "_mhash", None) is not None

    def integer(self, obj: Any) -> int:
        return int(obj.p)

    def rational(self, obj: Any) -> Tuple[int, int]:
        return int(obj.p), int(obj.q)

    def is_time_symbol(self, obj: Any) -> bool:
        vector = sys.modules.get("sympy.physics.vector")
        t = getattr(getattr(vector, "dynamicsymbols", None), "_t", None)
        if t is not None:
            return obj == t
        return getattr(obj, "is_Symbol", False) and obj.name == "t"


class SymEngineDialect(Dialect):
    library = "symengine"

    def rational(self, obj: Any) -> Tuple[int, int]:
        p, q = obj.get_num_den()
        return int(p), int(q)

    def is_time_symbol(self, obj: Any) -> bool:
        return type(obj).__name__ == "Symbol" and obj.name == "t"

    def piecewise_pairs(self, obj: Any, children: Any) -> List[Tuple[Expr, Expr]]:
        # symengine's Piecewise lists value, condition, value, condition, ...
        return [(children[i], children[i + 1]) for i in range(0, len(children), 2)]

    def class_names(self, cls: type) -> List[str]:
        names = super().class_names(cls)
        return ["AppliedUndef" if n == "FunctionSymbol" else n for n in names]


_SYMPY, _SYMENGINE = SymPyDialect(), SymEngineDialect()


_LIBRARY: Dict[type, Optional[Dialect]] = {}


def _library(obj: Any) -> Optional[Dialect]:
    """The dialect of ``obj``'s library, from the modules of its class and bases (SymPy
    makes the classes of undefined functions at run time, outside its modules)."""
    cls = type(obj)
    if cls not in _LIBRARY:
        modules = [c.__module__ or "" for c in cls.__mro__]
        _LIBRARY[cls] = next((d for m in modules for prefix, d in (("sympy", _SYMPY), ("symengine", _SYMENGINE))
                              if m.startswith(prefix)), None)
    return _LIBRARY[cls]


def _is_matrix(obj: Any) -> bool:
    names = {c.__name__ for c in type(obj).__mro__}
    return bool(names & {"MatrixBase", "DenseMatrixBase", "NDimArray"}) and _library(obj) is not None


def _matrix_rows(obj: Any) -> List[List[Any]]:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    rows, cols = obj.shape  # symengine's DenseMatrix
    return [[obj[i, j] for j in range(cols)] for i in range(rows)]


def map_structure(obj: Any, leaf: Callable[[Any], Any]) -> Any:
    """``obj`` with ``leaf`` applied to each scalar: lists and tuples keep their type,
    matrices become lists of rows, NumPy object arrays keep their shape."""
    if isinstance(obj, list):
        return [map_structure(o, leaf) for o in obj]
    if isinstance(obj, tuple):
        return tuple(map_structure(o, leaf) for o in obj)
    if _is_matrix(obj):
        return map_structure(_matrix_rows(obj), leaf)
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray) and obj.dtype == object:
        out = np.empty(obj.shape, dtype=object)
        for index, value in np.ndenumerate(obj):
            out[index] = leaf(value)
        return out
    return leaf(obj)


def from_sympy(obj: Any, pool: Optional[ExprPool] = None, symbols: Optional[Mapping[Any, Any]] = None) -> Any:
    """The alkahest expression(s) for a SymPy or symengine object.

    ``obj`` is an expression, a (nested) list or tuple of them, or a matrix (``Matrix``,
    ``ImmutableMatrix``, symengine's ``DenseMatrix``); the result has the same structure
    (a matrix becomes a list of rows). Conversion is iterative and memoised: a
    sub-expression shared or repeated anywhere in ``obj`` is converted once.

    ``pool``: where the expressions are built (a new ``ExprPool`` by default).
    ``symbols``: optional ``{sympy object: alkahest expression, symbol name or number}``
    to rename or substitute; other symbols keep their names. Functions of the time
    symbol ``t`` (``sympy.physics`` dynamicsymbols ``q1(t)``) and their time
    derivatives become symbols named as SymPy prints them (``"q1(t)"``,
    ``"Derivative(q1(t), t)"``).

    Numbers are rounded to float64 once (``Rational(1, 3)`` is the double nearest 1/3).
    ``x**(1/2)`` and ``x**(1/3)`` use ``sqrt`` and ``cbrt`` (NaN for negative ``x``, like
    NumPy's real power), ``zoo`` becomes NaN, a ``Piecewise`` without a true condition
    is NaN where none holds (as ``sympy.lambdify`` gives). What alkahest cannot compute
    (undefined functions, ``I``, unevaluated ``Integral``/``Sum``/``Derivative``, ...)
    raises :class:`ConversionError` naming the class and the sub-expression.

    >>> import sympy
    >>> x = sympy.Symbol("x")
    >>> from_sympy([x**2, sympy.Piecewise((x, x > 0), (0, True))])
    [x**2, where(x > 0, x, 0)]
    """
    pool = pool if pool is not None else ExprPool()
    if not isinstance(pool, ExprPool):
        raise ArgumentTypeError(f"pool must be an alkahest ExprPool, got {type(pool).__name__}")
    if symbols is not None and not isinstance(symbols, Mapping):
        raise ArgumentTypeError(f"symbols must be a mapping {{sympy symbol: expression or name}}, got {type(symbols).__name__}")
    converters: Dict[int, Converter] = {}

    def leaf(value: Any) -> Any:
        if isinstance(value, Expr):
            if value.pool != pool:
                raise ConversionError("an alkahest expression of another ExprPool is mixed in; use one pool")
            return value
        if isinstance(value, bool):
            return pool.constant(float(value))
        if isinstance(value, (int, float)):
            return pool.integer(value) if isinstance(value, int) and abs(value) <= 2**53 else pool.constant(float(value))
        dialect = _library(value)
        if dialect is None:
            raise ConversionError(
                f"{type(value).__name__} is not a SymPy or symengine expression: {short(value)}; "
                "from_sympy takes expressions, lists, tuples and matrices of them"
            )
        conv = converters.get(id(dialect))
        if conv is None:
            conv = converters[id(dialect)] = Converter(dialect, pool, symbols)
        out = conv.convert(value)
        if not isinstance(out, Expr):
            raise ConversionError(f"{type(value).__name__} is not a scalar expression: {short(value)}")
        return out

    return map_structure(obj, leaf)


# -- alkahest -> SymPy ------------------------------------------------------------------


def _sympy_builders(sp: Any) -> Dict[str, Callable[..., Any]]:
    third = sp.Rational(1, 3)
    half = sp.Rational(1, 2)
    unary = {name: getattr(sp, name) for name in
             ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
              "exp", "log", "erf", "erfc", "floor", "sqrt")}
    return {
        **unary,
        "neg": lambda a: -a, "abs": sp.Abs, "ceil": sp.ceiling,
        "cbrt": lambda a: sp.sign(a) * sp.Abs(a) ** third,
        "round": lambda a: sp.sign(a) * sp.floor(sp.Abs(a) + half),
        "expm1": lambda a: sp.exp(a) - 1, "log1p": lambda a: sp.log(1 + a),
        "log2": lambda a: sp.log(a, 2), "log10": lambda a: sp.log(a, 10),
        "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b, "pow": lambda a, b: a**b, "atan2": sp.atan2,
        "min": sp.Min, "max": sp.Max,
        "copysign": lambda a, b: sp.Piecewise((sp.Abs(a), b >= 0), (-sp.Abs(a), True)),
    }


_CONDITIONS = {"lt": "Lt", "le": "Le", "gt": "Gt", "ge": "Ge", "eq": "Eq", "ne": "Ne", "and": "And", "or": "Or", "not": "Not"}


def to_sympy(obj: Any, symbols: Optional[Mapping[Any, Any]] = None) -> Any:
    """SymPy expression(s) for alkahest expression(s): ``obj`` is an expression or a
    (nested) list or tuple of them; the result has the same structure.

    Iterative, each shared node converted once. Symbols become ``sympy.Symbol`` of the
    same name unless ``symbols`` maps the alkahest symbol (or its name) to a SymPy
    object. Integral constants become ``Integer``, others ``Float`` (the exact double).
    Conditions used as numbers become ``Piecewise((1, c), (0, True))``; ``expm1``,
    ``log1p``, ``log2``, ``log10``, ``cbrt``, ``round`` and ``copysign`` are written with
    SymPy's elementary functions (``copysign`` does not keep the sign of a zero).

    >>> pool = ExprPool(); x = pool.symbol("x")
    >>> to_sympy([x**2, where(x > 0, x, 0)])
    [x**2, Piecewise((x, x > 0), (0, True))]
    """
    import sympy as sp

    leaves: List[Expr] = []

    def collect(e: Any) -> int:
        if not isinstance(e, Expr):
            raise ArgumentTypeError(f"to_sympy takes alkahest expressions (or lists/tuples of them), got {type(e).__name__}")
        leaves.append(e)
        return len(leaves) - 1

    shape = map_structure(obj, collect)
    if not leaves:
        return shape
    nodes, roots = _native.dag(leaves)
    names: Dict[str, Any] = {}
    for k, v in (symbols or {}).items():
        names[str(k.name) if isinstance(k, Expr) else str(k)] = v
    build = _sympy_builders(sp)
    nums: List[Any] = [None] * len(nodes)  # numeric form
    conds: List[Any] = [None] * len(nodes)  # boolean form, for conditions

    def num(i: int) -> Any:
        if nums[i] is None:
            nums[i] = sp.Piecewise((sp.Integer(1), conds[i]), (sp.Integer(0), True))
        return nums[i]

    def cond(i: int) -> Any:
        if conds[i] is None:
            conds[i] = sp.Ne(nums[i], 0)
        return conds[i]

    for i, (op, payload, children) in enumerate(nodes):
        if op == "symbol":
            name = str(payload)
            nums[i] = names[name] if name in names else sp.Symbol(name)
        elif op == "const":
            nums[i] = _sympy_number(sp, float(payload or 0.0))
        elif op == "where":
            c, a, b = children
            nums[i] = sp.Piecewise((num(a), cond(c)), (num(b), True))
        elif op in _CONDITIONS:
            f = getattr(sp, _CONDITIONS[op])
            args = [cond(c) for c in children] if op in ("and", "or", "not") else [num(c) for c in children]
            conds[i] = f(*args)
        else:
            nums[i] = build[op](*(num(c) for c in children))
    values = [num(r) for r in roots]
    it = iter(values)
    return map_structure(shape, lambda _: next(it))


def _sympy_number(sp: Any, v: float) -> Any:
    if math.isnan(v):
        return sp.nan
    if math.isinf(v):
        return sp.oo if v > 0 else -sp.oo
    if v == int(v) and abs(v) < 2**53 and not (v == 0 and math.copysign(1, v) < 0):
        return sp.Integer(int(v))
    return sp.Float(v)
