"""The converter shared by every computer-algebra front end (SymPy, symengine).

A foreign expression is a DAG of objects with ``.args``; each class maps to a *rule*
(how to build the alkahest node from the converted arguments). The walk is iterative
(a 100,000-deep expression converts without recursion) and memoised on the foreign
objects themselves, so a subtree the source shares or repeats is converted once and
hash-conses to one alkahest node.

A dialect (``sympy.py``, ``symengine.py``) says how to read its library's objects: the
class names of its hierarchy, the values of its numbers, which objects hash cheaply.
The rules below are written once for both, keyed by class name (the two libraries name
their classes alike).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .. import functions as fn
from .._native import Expr, ExprPool
from ..errors import ConversionError

Handler = Callable[["Converter", Any, Sequence[Any]], Any]


@dataclass(frozen=True)
class Rule:
    """How one class converts: ``leaf`` rules do not convert the object's arguments."""

    name: str
    convert: Handler
    leaf: bool = False


class Dialect:
    """How to read one library's objects. Subclasses fill in the hooks."""

    #: The library's name, for error messages ("SymPy").
    library = ""

    def class_names(self, cls: type) -> List[str]:
        """Names of ``cls`` and its bases, most specific first."""
        return [c.__name__ for c in cls.__mro__]

    #: Whether :meth:`key` is object identity (the library keeps its objects alive and
    #: returns the same argument objects every time); else the objects hash by structure.
    keys_by_identity = False

    def args(self, obj: Any) -> Tuple[Any, ...]:
        return obj.args

    @property
    def key(self) -> Callable[[Any], Any]:
        """The memo key of an object."""
        return id if self.keys_by_identity else _identity

    def hash_is_cheap(self, obj: Any) -> bool:
        """Whether ``hash(obj)`` is O(1) now, so a structurally equal object converted
        before can be looked up before walking ``obj``'s arguments."""
        return True

    def integer(self, obj: Any) -> int:
        return int(obj)

    def rational(self, obj: Any) -> Tuple[int, int]:
        raise NotImplementedError

    def is_time_symbol(self, obj: Any) -> bool:
        """Whether ``obj`` is the time symbol of functions of time (``q(t)``)."""
        return False

    def piecewise_pairs(self, obj: Any, children: Sequence[Any]) -> List[Tuple[Expr, Expr]]:
        return [tuple(c) for c in children]


def _identity(obj: Any) -> Any:
    return obj


def short(obj: Any, limit: int = 100) -> str:
    """``str(obj)`` cut to ``limit`` characters, without printing huge objects whole."""
    seen, stack = 0, [obj]
    while stack and seen < 400:
        seen += 1
        stack.extend(getattr(stack.pop(), "args", ()) or ())
    if stack:
        return f"{type(obj).__name__}(...) with more than {seen} sub-expressions"
    try:
        text = str(obj)
    except Exception:  # noqa: BLE001 - only a description for an error message
        text = f"{type(obj).__name__}(...)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def unsupported(conv: "Converter", obj: Any, why: str) -> ConversionError:
    cls = type(obj).__name__
    return ConversionError(f"{conv.dialect.library} {cls} is not supported: {why}; in: {short(obj)}")


class Converter:
    """One conversion into ``pool``: the memo spans every call of :meth:`convert`, so
    the outputs of a list or a matrix share their sub-expressions."""

    def __init__(self, dialect: Dialect, pool: ExprPool, symbols: Optional[Mapping[Any, Any]] = None) -> None:
        self.dialect, self.pool = dialect, pool
        self.memo: Dict[Any, Any] = {}  # dialect.key(obj) -> conversion
        # By structure, when memo keys are identities: equal objects convert once.
        self._shared: Optional[Dict[Any, Any]] = {} if dialect.keys_by_identity else None
        self._alive: List[Any] = []
        self._rules: Dict[type, Rule] = {}
        self._names: Dict[str, Any] = {}  # alkahest symbol name -> the foreign symbol it came from
        self._subs = {k: self._substitute(k, v) for k, v in (symbols or {}).items()}

    # -- building blocks for rules ------------------------------------------------------

    def constant(self, value: float) -> Expr:
        return self.pool.constant(value)

    def symbol(self, name: str, source: Any) -> Expr:
        """The symbol ``name``; two different foreign symbols may not share a name."""
        previous = self._names.setdefault(name, source)
        if previous is not source and previous != source:
            raise ConversionError(
                f"two different {self.dialect.library} symbols are both named {name!r} "
                f"({short(previous)} and {short(source)}, e.g. with different assumptions); "
                "rename one, or map them with symbols={...}"
            )
        return self.pool.symbol(name)

    def _substitute(self, key: Any, value: Any) -> Expr:
        if isinstance(value, Expr):
            if value.pool != self.pool:
                raise ConversionError(f"symbols[{short(key)}] is an expression of another ExprPool; use the pool given")
            return value
        if isinstance(value, str):
            return self.pool.symbol(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return self.pool.constant(float(value))
        raise ConversionError(
            f"symbols[{short(key)}] must be an alkahest expression, a symbol name or a number, got {type(value).__name__}"
        )

    # -- the walk -----------------------------------------------------------------------

    def rule(self, obj: Any) -> Rule:
        cls = type(obj)
        rule = self._rules.get(cls)
        if rule is None:
            names = self.dialect.class_names(cls)
            found = next((RULES[n] for n in names if n in RULES), None)
            if found is None:
                why = next((UNSUPPORTED[n] for n in names if n in UNSUPPORTED), None)
                found = Rule(cls.__name__, _refuse(why or "alkahest has no such operation"), leaf=True)
            rule = self._rules[cls] = found
        return rule

    def convert(self, root: Any) -> Any:
        """The alkahest expression for ``root`` (iterative, memoised)."""
        memo, shared, subs, dialect, alive = self.memo, self._shared, self._subs, self.dialect, self._alive
        key, cheap = dialect.key, dialect.hash_is_cheap

        def done(obj: Any) -> bool:
            k = key(obj)
            if k in memo:
                return True
            if shared is not None and cheap(obj):
                # A structurally equal object seen before (the source repeats itself).
                value = shared.get(obj)
                if value is not None:
                    memo[k] = value
                    return True
            return False

        def finish(obj: Any, value: Any) -> None:
            memo[key(obj)] = value
            if shared is not None:
                if cheap(obj):
                    shared[obj] = value
                alive.append(obj)  # its id stays its own while the memo holds it

        stack = [root]
        while stack:
            obj = stack[-1]
            if done(obj):
                stack.pop()
                continue
            if subs and cheap(obj) and obj in subs:
                finish(obj, subs[obj])
                stack.pop()
                continue
            rule = self.rule(obj)
            if rule.leaf:
                finish(obj, rule.convert(self, obj, ()))
                stack.pop()
                continue
            args = dialect.args(obj)
            missing = [a for a in args if not done(a)]
            if missing:
                stack.extend(reversed(missing))
                continue
            finish(obj, rule.convert(self, obj, [memo[key(a)] for a in args]))
            stack.pop()
        return memo[key(root)]


# -- rules --------------------------------------------------------------------------------


def _refuse(why: str) -> Handler:
    def convert(conv: Converter, obj: Any, _children: Sequence[Any]) -> Any:
        raise unsupported(conv, obj, why)

    return convert


def _value(v: float) -> Handler:
    return lambda conv, obj, _: conv.constant(v)


def _fold(op: Callable[[Any, Any], Any]) -> Handler:
    def convert(conv: Converter, obj: Any, children: Sequence[Any]) -> Any:
        acc = children[0]
        for c in children[1:]:
            acc = op(acc, c)
        return acc

    return convert


def _unary(f: Callable[[Any], Any]) -> Handler:
    def convert(conv: Converter, obj: Any, children: Sequence[Any]) -> Any:
        if len(children) != 1:
            raise unsupported(conv, obj, f"expected one argument, got {len(children)}")
        return f(children[0])

    return convert


def _binary(f: Callable[[Any, Any], Any]) -> Handler:
    def convert(conv: Converter, obj: Any, children: Sequence[Any]) -> Any:
        if len(children) != 2:
            raise unsupported(conv, obj, f"expected two arguments, got {len(children)}")
        return f(children[0], children[1])

    return convert


def _symbol(conv: Converter, obj: Any, _: Sequence[Any]) -> Expr:
    return conv.symbol(obj.name, obj)


def _dummy(conv: Converter, obj: Any, _: Sequence[Any]) -> Expr:
    return conv.symbol(f"_{obj.name}_{getattr(obj, 'dummy_index', id(obj))}", obj)


def _to_float(p: int, q: int = 1) -> float:
    """p/q correctly rounded (Python's int true division is); ±inf beyond the range."""
    try:
        return p / q
    except OverflowError:
        return math.inf if (p > 0) == (q > 0) else -math.inf


def _integer(conv: Converter, obj: Any, _: Sequence[Any]) -> Expr:
    return conv.constant(_to_float(conv.dialect.integer(obj)))


def _rational(conv: Converter, obj: Any, _: Sequence[Any]) -> Expr:
    return conv.constant(_to_float(*conv.dialect.rational(obj)))


def _float(conv: Converter, obj: Any, _: Sequence[Any]) -> Expr:
    return conv.constant(float(obj))


def _exponent(conv: Converter, e: Any) -> Optional[Tuple[int, int]]:
    """``(p, q)`` if the foreign exponent ``e`` is an integer or a rational, else None."""
    names = conv.rule(e).name
    if names == "Integer":
        return conv.dialect.integer(e), 1
    if names == "Rational":
        return conv.dialect.rational(e)
    return None


def _power_pq(conv: Converter, base: Expr, p: int, q: int) -> Expr:
    """``base**(p/q)``. Integer powers stay integer (the tape expands them); x**(1/2) is
    ``sqrt``; other halves and thirds are powers of sqrt/cbrt (exact roots, where
    ``pow(x, 1/3.)`` is off by ln(x) * 2e-17 relative: 57 ulp at 1e300), taken at +0 for
    x = -0 and NaN below 0 as C's ``pow`` gives; the rest calls ``pow``."""
    if q == 1:
        return base if p == 1 else base ** _exact_int(conv, p)
    if q == 2 and p == 1:
        return fn.sqrt(base)
    if q == 2:
        root = fn.abs(fn.sqrt(base))
    elif q == 3:
        root = fn.where(base < 0, math.nan, fn.abs(fn.cbrt(base)))
    else:
        return base ** conv.constant(_to_float(p, q))
    return root if p == 1 else root ** _exact_int(conv, p)


def _power(conv: Converter, base: Expr, exponent: Any, exponent_expr: Any) -> Expr:
    """``base**exponent`` (rational exponents as in :func:`_power_pq`)."""
    pq = _exponent(conv, exponent)
    if pq is not None:
        return _power_pq(conv, base, *pq)
    return base**exponent_expr


def _exact_int(conv: Converter, n: int) -> Any:
    return conv.pool.integer(n) if abs(n) <= 2**53 else conv.constant(_to_float(n))


def _pow(conv: Converter, obj: Any, children: Sequence[Any]) -> Expr:
    base_obj, exp_obj = conv.dialect.args(obj)
    if conv.rule(base_obj).name == "Exp1":
        return fn.exp(children[1])
    return _power(conv, children[0], exp_obj, children[1])


def _mul(conv: Converter, obj: Any, children: Sequence[Any]) -> Expr:
    """A product as SymPy prints it: factors with negative exponents (and a rational
    coefficient's denominator) divide, so ``x/y`` is one division, not ``x*(1/y)``."""
    num: List[Any] = []
    den: List[Any] = []
    for arg, value in zip(conv.dialect.args(obj), children):
        rule = conv.rule(arg).name
        if rule == "Rational":
            p, q = conv.dialect.rational(arg)
            if q & (q - 1) == 0:  # a power of two: p/q is exact
                num.append(conv.constant(_to_float(p, q)))
            else:
                num.append(_exact_int(conv, p))
                den.append(_exact_int(conv, q))
            continue
        if rule == "Pow":
            base, e = conv.dialect.args(arg)
            pq = _exponent(conv, e)
            if pq is not None and pq[0] < 0 and conv.rule(base).name != "Exp1":
                p, q = pq
                den.append(_power_pq(conv, conv.convert(base), -p, q))
                continue
        num.append(value)
    numerator = _product(conv, num)
    if not den:
        return numerator
    return numerator / _product(conv, den)


def _product(conv: Converter, factors: List[Any]) -> Any:
    if not factors:
        return conv.constant(1.0)
    # A coefficient of -1 becomes a negation, as SymPy prints it.
    first = factors[0]
    if isinstance(first, Expr) and first.value == -1.0 and len(factors) > 1:
        return -_product(conv, factors[1:])
    acc = first
    for f in factors[1:]:
        acc = acc * f
    return acc


def _log(conv: Converter, obj: Any, children: Sequence[Any]) -> Expr:
    if len(children) == 2:
        return fn.log(children[0]) / fn.log(children[1])
    return fn.log(children[0])


def _sign(x: Expr) -> Expr:
    # NaN stays NaN, ±0 gives ±0 (numpy.sign).
    return fn.where(x > 0, 1.0, fn.where(x < 0, -1.0, x))


def _heaviside(conv: Converter, obj: Any, children: Sequence[Any]) -> Expr:
    # SymPy's NumPy printer: select([x < 0, x == 0, True], [0, H0, 1]).
    x = children[0]
    h0 = children[1] if len(children) > 1 else 0.5
    return fn.where(x < 0, 0.0, fn.where(fn.eq(x, 0.0), h0, 1.0))


def _dynamic_symbol(conv: Converter, obj: Any, _: Sequence[Any]) -> Expr:
    args = conv.dialect.args(obj)
    if len(args) == 1 and conv.dialect.is_time_symbol(args[0]):
        return conv.symbol(str(obj), obj)
    raise unsupported(
        conv, obj,
        "an undefined function has no values (functions of the time symbol t, like "
        "sympy.physics' dynamicsymbols, are taken as symbols); substitute an expression for it",
    )


def _derivative(conv: Converter, obj: Any, _: Sequence[Any]) -> Expr:
    args = conv.dialect.args(obj)
    target = args[0]
    of_time = conv.rule(target).name == "AppliedUndef" and all(
        conv.dialect.is_time_symbol(v) for v in _variables(conv, args[1:])
    )
    if of_time and len(conv.dialect.args(target)) == 1 and conv.dialect.is_time_symbol(conv.dialect.args(target)[0]):
        return conv.symbol(str(obj), obj)
    raise unsupported(conv, obj, "an unevaluated derivative; call .doit() first (time derivatives of "
                                 "dynamicsymbols are taken as symbols)")


def _variables(conv: Converter, specs: Sequence[Any]) -> List[Any]:
    out = []
    for s in specs:  # SymPy: (t, n) tuples; symengine: plain symbols
        out.append(s[0] if isinstance(s, tuple) or type(s).__name__ == "Tuple" else s)
    return out


def _piecewise(conv: Converter, obj: Any, children: Sequence[Any]) -> Expr:
    pairs = conv.dialect.piecewise_pairs(obj, children)
    result: Any = math.nan  # no condition holds: NaN, as SymPy's NumPy printer
    for value, cond in reversed(pairs):
        result = fn.where(cond, value, result)
    if not isinstance(result, Expr):
        result = conv.constant(float(result))
    return result


def _pair(conv: Converter, obj: Any, children: Sequence[Any]) -> Tuple[Any, Any]:
    return (children[0], children[1])


def _xor(conv: Converter, obj: Any, children: Sequence[Any]) -> Expr:
    acc = fn.ne(children[0], 0.0)
    for c in children[1:]:
        acc = fn.ne(acc, fn.ne(c, 0.0))
    return acc


def _ite(conv: Converter, obj: Any, children: Sequence[Any]) -> Expr:
    return fn.where(*children)


def _mod(conv: Converter, obj: Any, children: Sequence[Any]) -> Expr:
    x, y = children
    return x - fn.floor(x / y) * y  # numpy.mod's sign convention


_UNARY: Dict[str, Callable[[Any], Any]] = {
    name: getattr(fn, name)
    for name in ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
                 "exp", "erf", "erfc", "floor", "log2", "log10", "log1p", "expm1")
}
_UNARY.update({
    "Abs": fn.abs, "ceiling": fn.ceil, "sign": _sign, "Sqrt": fn.sqrt, "Cbrt": fn.cbrt,
    "sec": lambda x: 1.0 / fn.cos(x), "csc": lambda x: 1.0 / fn.sin(x), "cot": lambda x: 1.0 / fn.tan(x),
    "sech": lambda x: 1.0 / fn.cosh(x), "csch": lambda x: 1.0 / fn.sinh(x), "coth": lambda x: 1.0 / fn.tanh(x),
    "exp2": lambda x: 2.0**x, "Not": fn.logical_not,
    # Inputs are real (a complex intermediate is NaN already): SymPy writes re/im when its
    # symbols are not declared real, e.g. Abs(exp(x)) -> exp(re(x)).
    "re": lambda x: x, "conjugate": lambda x: x,
    "UnevaluatedExpr": lambda x: x,  # holds an expression SymPy must not simplify
})

_BINARY_FOLD: Dict[str, Callable[[Any, Any], Any]] = {
    "Add": lambda a, b: a + b, "Min": fn.min, "Max": fn.max, "And": fn.logical_and, "Or": fn.logical_or,
}

_RELATIONAL: Dict[str, Callable[[Any, Any], Any]] = {
    "StrictLessThan": fn.lt, "LessThan": fn.le, "StrictGreaterThan": fn.gt, "GreaterThan": fn.ge,
    "Equality": fn.eq, "Unequality": fn.ne,
}

RULES: Dict[str, Rule] = {}
for _name, _f in _UNARY.items():
    RULES[_name] = Rule(_name, _unary(_f))
for _name, _op in _BINARY_FOLD.items():
    RULES[_name] = Rule(_name, _fold(_op))
for _name, _op in _RELATIONAL.items():
    RULES[_name] = Rule(_name, _binary(_op))
for _name, _h, _leaf in [
    ("Symbol", _symbol, True), ("Dummy", _dummy, True),
    ("Integer", _integer, True), ("Rational", _rational, True), ("Float", _float, True),
    ("Pi", _float, True), ("Exp1", _float, True), ("EulerGamma", _float, True), ("GoldenRatio", _float, True),
    ("Catalan", _float, True), ("TribonacciConstant", _float, True),
    ("Infinity", _value(math.inf), True), ("NegativeInfinity", _value(-math.inf), True),
    ("NaN", _value(math.nan), True), ("ComplexInfinity", _value(math.nan), True),
    ("BooleanTrue", _value(1.0), True), ("BooleanFalse", _value(0.0), True),
    ("AppliedUndef", _dynamic_symbol, True),
    ("Derivative", _derivative, True),
    ("Mul", _mul, False), ("Pow", _pow, False), ("log", _log, False),
    ("atan2", _binary(fn.atan2), False),
    ("Heaviside", _heaviside, False), ("Piecewise", _piecewise, False), ("ExprCondPair", _pair, False),
    ("Xor", _xor, False), ("ITE", _ite, False), ("Mod", _mod, False),
    ("im", lambda conv, obj, _: conv.constant(0.0), False),
]:
    RULES[_name] = Rule(_name, _h, _leaf)

# Classes with a specific reason; every other unknown class gets a generic one.
UNSUPPORTED: Dict[str, str] = {
    "ImaginaryUnit": "alkahest computes with real numbers (complex values are not supported yet)",
    "Integral": "an unevaluated integral; evaluate it (.doit()) or integrate numerically with scipy.integrate",
    "Sum": "an unevaluated sum; evaluate it (.doit()) first",
    "Product": "an unevaluated product; evaluate it (.doit()) first",
    "Limit": "an unevaluated limit; evaluate it (.doit()) first",
    "Subs": "an unevaluated substitution; evaluate it (.doit()) first",
    "Order": "an O() term has no value; remove it (.removeO())",
    "MatrixExpr": "matrix expressions are not scalars; pass the Matrix itself (from_sympy converts each entry)",
    "MatrixBase": "a matrix inside an expression is not a scalar; convert the matrix itself, entry by entry",
    "Tuple": "a tuple is not a scalar expression",
    "Function": "alkahest has no such function (see the list of supported functions in the docs)",
    "Relational": "this relation has no alkahest condition",
    "Boolean": "this logical operation has no alkahest equivalent",
}
