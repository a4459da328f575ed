"""from_sympy / to_sympy: random SymPy expressions against SymPy's own high-precision
evaluation (``sympy.lambdify(modules="mpmath")``), round trips, symengine, and the
catalogue of what cannot be converted."""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

sp = pytest.importorskip("sympy")

import alkahest as ak  # noqa: E402
from alkahest import errors  # noqa: E402
from reference import Ref, assert_close, build  # noqa: E402
from strategies import N_VARS, SETTINGS, leaves  # noqa: E402
from sympy.codegen.cfunctions import expm1, log1p, log2, log10  # noqa: E402
from sympy.printing.pycode import MpmathPrinter  # noqa: E402

# Operations with a SymPy class that from_sympy maps back to the same alkahest operation
# (round and copysign have none; cbrt is written as SymPy's real cube root).
SYMPY_UNARY = ["neg", "sqrt", "cbrt", "exp", "expm1", "log", "log1p", "log2", "log10", "sin", "cos", "tan",
               "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "erf", "erfc", "abs",
               "floor", "ceil", "not"]
SYMPY_BINARY = ["add", "sub", "mul", "div", "pow", "atan2", "min", "max", "lt", "le", "gt", "ge", "eq", "ne",
                "and", "or"]


def sympy_trees():
    def ext(children):
        return st.one_of(
            st.tuples(st.just("unary"), st.sampled_from(SYMPY_UNARY), children),
            st.tuples(st.just("binary"), st.sampled_from(SYMPY_BINARY), children, children),
            st.tuples(st.just("powi"), children, st.sampled_from([-3, -2, -1, 2, 3, 5, 16, 20])),
            st.tuples(st.just("where"), children, children, children),
        )

    return st.recursive(leaves, ext, max_leaves=8)


X = sp.symbols("x y z")
_UNARY = {
    "sqrt": sp.sqrt, "exp": sp.exp, "expm1": expm1, "log": sp.log, "log1p": log1p, "log2": log2, "log10": log10,
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "asin": sp.asin, "acos": sp.acos, "atan": sp.atan,
    "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "asinh": sp.asinh, "acosh": sp.acosh, "atanh": sp.atanh,
    "erf": sp.erf, "erfc": sp.erfc, "abs": sp.Abs, "floor": sp.floor, "ceil": sp.ceiling,
}
_RELATIONS = {"lt": sp.Lt, "le": sp.Le, "gt": sp.Gt, "ge": sp.Ge, "eq": sp.Eq, "ne": sp.Ne}


def protected(base):
    """SymPy's printers drop parentheses around a base that prints as a division
    (x - 1/(1/x) prints as x - 1/1/x; log2(x)**-3 as log(x)/log(2)**(-3)): compound
    bases are wrapped in UnevaluatedExpr, which prints in parentheses (from_sympy reads
    through it)."""
    return base if base.is_Atom else sp.UnevaluatedExpr(base)


def to_sympy_tree(tree):
    """The tree as an unevaluated SymPy expression of the same structure; returns
    (expression, is_condition)."""

    def num(t):
        e, is_cond = to_sympy_tree(t)
        return sp.Piecewise((1, e), (0, True), evaluate=False) if is_cond else e

    def cond(t):
        e, is_cond = to_sympy_tree(t)
        return e if is_cond else sp.Ne(e, 0, evaluate=False)

    kind = tree[0]
    if kind == "sym":
        return X[tree[1]], False
    if kind == "const":
        return sp.Float(tree[1]), False
    if kind == "unary":
        name, a = tree[1], tree[2]
        if name == "neg":
            return sp.Mul(-1, num(a), evaluate=False), False
        if name == "not":
            return sp.Not(cond(a), evaluate=False), True
        if name == "cbrt":
            v = num(a)
            return sp.Mul(sp.sign(v, evaluate=False), sp.Pow(sp.Abs(v, evaluate=False), sp.Rational(1, 3), evaluate=False),
                          evaluate=False), False
        return _UNARY[name](num(a), evaluate=False), False
    if kind == "binary":
        name, a, b = tree[1:]
        if name in _RELATIONS:
            return _RELATIONS[name](num(a), num(b), evaluate=False), True
        if name in ("and", "or"):
            return (sp.And if name == "and" else sp.Or)(cond(a), cond(b), evaluate=False), True
        u, v = num(a), num(b)
        return {
            "add": lambda: sp.Add(u, v, evaluate=False),
            "sub": lambda: sp.Add(u, sp.Mul(-1, v, evaluate=False), evaluate=False),
            "mul": lambda: sp.Mul(u, v, evaluate=False),
            "div": lambda: sp.Mul(u, sp.Pow(protected(v), -1, evaluate=False), evaluate=False),
            "pow": lambda: sp.Pow(protected(u), v, evaluate=False),
            "atan2": lambda: sp.atan2(u, v, evaluate=False),
            "min": lambda: sp.Min(u, v, evaluate=False),
            "max": lambda: sp.Max(u, v, evaluate=False),
        }[name](), False
    if kind == "powi":
        return sp.Pow(protected(num(tree[1])), sp.Integer(tree[2]), evaluate=False), False
    if kind == "where":
        return sp.Piecewise((num(tree[2]), cond(tree[1])), (num(tree[3]), True), evaluate=False), False
    raise ValueError(kind)


def without_negative_zero(tree):
    """SymPy has no -0.0 (Float(-0.0) is 0): the tree with +0.0 for it."""
    if tree == ("const", -0.0) and math.copysign(1, tree[1]) < 0:
        return ("const", 0.0)
    return tuple(without_negative_zero(t) if isinstance(t, tuple) else t for t in tree)


def ieee_special(tree, syms, inputs):
    """Points where some sub-expression of ``tree`` is NaN, infinite or -0.0 in IEEE
    arithmetic: there the IEEE value is the reference (mpmath continues into complex
    numbers and signed infinities by rules of its own: log(log(0)) == log(log(0)) is true
    there; and SymPy has no -0.0, so atan2(0, -x) at x = 0 is 0 there, pi in IEEE)."""
    _, ref = build(tree, syms, inputs)
    mask = ~np.isfinite(ref.value) | ((ref.value == 0) & np.signbit(ref.value))
    kind = tree[0]
    children = {"unary": tree[2:3], "binary": tree[2:4], "powi": tree[1:2], "where": tree[1:4]}.get(kind, ())
    for child in children:
        mask |= ieee_special(child, syms, inputs)
    return mask


class _MpmathPrinter(MpmathPrinter):
    """SymPy's mpmath printer, with parentheses around log2's division (it prints
    log2(x)**-3 as log(x)/log(2)**(-3))."""

    def _print_log2(self, e):
        return f"({super()._print_log2(e)})"


def mpmath_values(expr, inputs):
    """SymPy's own evaluation at 113 bits (``lambdify(modules="mpmath")``), rounded once;
    NaN where the value is not real, None where mpmath cannot evaluate the point."""
    from sympy.utilities.lambdify import MPMATH_TRANSLATIONS

    printer = _MpmathPrinter({"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True,
                              "user_functions": {k: k for k in MPMATH_TRANSLATIONS}})  # as lambdify makes it
    f = sp.lambdify(X, expr, modules="mpmath", printer=printer)
    out = []
    with mpmath.workprec(113):
        for p in zip(*inputs):
            try:
                v = f(*(mpmath.mpf(float(c)) for c in p))
                if isinstance(v, mpmath.mpc):
                    v = v.real if v.imag == 0 else math.nan
                out.append(float(v))
            except Exception:  # noqa: BLE001 - any point mpmath cannot evaluate is left out
                out.append(None)
    return out


# mpmath has no -0.0 (atan2(0.0, -0.0) is pi in IEEE arithmetic, 0 in mpmath's): +0.0 only.
finite_points = st.lists(st.tuples(*[st.floats(-4, 4, allow_subnormal=False).map(lambda v: v + 0.0)] * N_VARS),
                         min_size=1, max_size=20)


def _comparisons(tree) -> int:
    """Comparison nodes in a strategy tree."""
    if not isinstance(tree, tuple):
        return 0
    own = 1 if tree[0] == "binary" and tree[1] in ("lt", "le", "gt", "ge", "eq", "ne") else 0
    return own + sum(_comparisons(t) for t in tree[1:])


@SETTINGS
@given(sympy_trees(), finite_points)
@example(("binary", "lt", ("sym", 0), ("binary", "le", ("unary", "sqrt", ("sym", 1)), ("unary", "sqrt", ("sym", 1)))),
         [(0.0, -1.0, 0.0)])
def test_from_sympy_matches_sympy_at_high_precision(tree, pts):
    tree = without_negative_zero(tree)
    try:
        expr, is_cond = to_sympy_tree(tree)
        if is_cond:
            expr = sp.Piecewise((1, expr), (0, True), evaluate=False)
    except (TypeError, ValueError, KeyError, AttributeError):
        # SymPy refuses to build it (a relation of a complex constant, ...), or fails
        # inside (Piecewise's rewrite of some conditions calls unrad, which can fail).
        assume(False)
    assume(not expr.has(sp.I))  # SymPy made a constant part complex (sqrt(-2.5))
    inputs = [np.array([p[i] for p in pts]) for i in range(N_VARS)]
    pool = ak.ExprPool()
    syms = pool.symbols("x y z")
    _, ref = build(tree, syms, inputs, use_mpmath=True)  # IEEE values per node, and the error bound
    try:
        want = mpmath_values(expr, inputs)
    except Exception:  # noqa: BLE001 - SymPy cannot print it for mpmath (zoo, ...)
        assume(False)
    # Where IEEE arithmetic meets NaN or an infinity anywhere (acosh(0) is NaN, not i*pi/2;
    # an overflow stays infinite), the IEEE value is the value, and where mpmath's is not
    # finite (log2(0)**-3 is -0.0 in IEEE arithmetic, -inf in mpmath's); elsewhere
    # SymPy's exact value is.
    mp = np.array([math.nan if w is None else w for w in want])
    special = ieee_special(tree, syms, inputs)
    value = np.where(special | ~np.isfinite(mp), ref.value, mp)
    err = np.where([w is None for w in want] & np.isfinite(ref.value), np.inf, ref.err)
    if _comparisons(tree) > len(expr.atoms(sp.core.relational.Relational)) - (1 if is_cond else 0):
        # SymPy decided a comparison itself (sqrt(y) <= sqrt(y) is True): where IEEE
        # arithmetic meets NaN the tree's value is not what SymPy's expression computes.
        err = np.where(special, np.inf, err)
    f = ak.compile_expr(ak.from_sympy(expr, pool), syms, cache=False)
    assert_close(ak.numpy_eval(f, *inputs), Ref(value, err), f"bulk {expr}")
    assert_close(np.array([f(*p) for p in zip(*inputs)]), Ref(value, err), f"scalar {expr}")


# SymPy expressions as users build them (evaluated, integer constants): converting to
# alkahest and back gives the same SymPy expression.
def evaluated_trees():
    ops = st.sampled_from(["add", "sub", "mul", "div", "pow2", "pow-3", "sqrt", "sin", "cos", "exp", "log", "atan",
                           "Abs", "Min", "Max", "piecewise", "erf", "tanh"])
    atom = st.one_of(st.sampled_from(X), st.integers(-5, 5).filter(bool).map(sp.Integer))

    def ext(children):
        return st.tuples(ops, children, children)

    return st.recursive(atom, ext, max_leaves=8)


def evaluated(t):
    if not isinstance(t, tuple):
        return t
    op, a, b = t[0], evaluated(t[1]), evaluated(t[2])
    return {
        "add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b, "div": lambda: a / b,
        "pow2": lambda: a**2, "pow-3": lambda: a**-3, "sqrt": lambda: sp.sqrt(a), "sin": lambda: sp.sin(a),
        "cos": lambda: sp.cos(b), "exp": lambda: sp.exp(a), "log": lambda: sp.log(a), "atan": lambda: sp.atan(a),
        "Abs": lambda: sp.Abs(a), "Min": lambda: sp.Min(a, b), "Max": lambda: sp.Max(a, b),
        "piecewise": lambda: sp.Piecewise((a, a > b), (b, True)), "erf": lambda: sp.erf(a),
        "tanh": lambda: sp.tanh(b),
    }[op]()


@SETTINGS
@given(evaluated_trees())
def test_to_sympy_round_trips(t):
    try:
        e = evaluated(t)
    except (TypeError, ValueError):
        assume(False)  # SymPy cannot compare complex values (Min(log(-1), x))
    assume(not e.has(sp.zoo, sp.nan, sp.oo, sp.I, sp.AccumBounds))
    back = ak.to_sympy(ak.from_sympy(e))
    if back == e:
        return
    # Constant sub-expressions (sqrt(2)) come back as their float64 values: equal numerically.
    assert back.free_symbols <= e.free_symbols, (e, back)
    pts = [[0.3, 1.7, -0.6], [2.5, -1.2, 0.9]]
    a, b = mpmath_values(e, pts), mpmath_values(back, pts)
    for u, v in zip(a, b):
        assert (u is None) == (v is None) and (u is None or u == pytest.approx(v, rel=1e-13, nan_ok=True)), (e, back)


def test_to_sympy_of_every_operation_converts_back_to_the_same_values():
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    exprs = [ak.expm1(x), ak.log1p(x), ak.log2(y), ak.log10(y), ak.cbrt(x), ak.erfc(x), ak.ceil(x), ak.floor(y),
             ak.round(x), ak.atan2(x, y), ak.min(x, y), ak.max(x, y), ak.copysign(x, y), ak.where(x > y, x, y),
             (x > y) * 2.0 + (x <= y), ak.logical_not((x < 0) | (y >= 1)), ak.where(x, 1.0, 2.0), x**-2, x**0.5,
             ak.sqrt(y) ** y, ak.eq(x, y) + ak.ne(x, 1.0)]
    xs = np.array([-1.7, -0.3, 0.4, 1.6, 2.5, 3.0])
    ys = np.array([0.5, 2.0, 0.4, 3.5, 2.5, 1.0])
    back = ak.from_sympy(ak.to_sympy(exprs), pool)
    for e, b in zip(exprs, back):
        f, g = ak.compile_expr(e, [x, y], cache=False), ak.compile_expr(b, [x, y], cache=False)
        np.testing.assert_allclose(ak.numpy_eval(g, xs, ys), ak.numpy_eval(f, xs, ys), rtol=1e-14, err_msg=str(e))


def test_to_sympy_keeps_structure_and_shares_nodes():
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    s = ak.sin(x * y)
    out = ak.to_sympy([s + 1, (s * 2, y)], symbols={"y": sp.Symbol("w")})
    sx, w = sp.Symbol("x"), sp.Symbol("w")
    assert out == [sp.sin(sx * w) + 1, (2 * sp.sin(sx * w), w)]
    assert isinstance(out[1], tuple)
    with pytest.raises(TypeError, match="alkahest expressions"):
        ak.to_sympy([s, "x"])


def test_structures_and_sharing():
    x, y = sp.symbols("x y")
    shared = sp.sin(x * y)
    pool = ak.ExprPool()
    out = ak.from_sympy([shared + 1, (shared * 2, [shared])], pool)
    assert isinstance(out, list) and isinstance(out[1], tuple) and isinstance(out[1][1], list)
    assert out[1][1][0].id == ak.from_sympy(shared, pool).id  # one node, wherever it appears
    m = ak.from_sympy(sp.Matrix([[x, y, 1], [x * y, 2, y]]))
    assert [len(r) for r in m] == [3, 3] and m[1][0].op == "mul"
    im = ak.from_sympy(sp.ImmutableMatrix([[x]]))
    assert im[0][0].name == "x"
    assert ak.from_sympy(3).value == 3.0 and ak.from_sympy(2.5).value == 2.5


def test_numbers_constants_and_special_values():
    x = sp.Symbol("x")
    values = {
        sp.Rational(1, 3): 1 / 3, sp.Integer(2) ** 100: 2.0**100, sp.pi: math.pi, sp.E: math.e,
        sp.EulerGamma: 0.5772156649015329, sp.GoldenRatio: (1 + math.sqrt(5)) / 2, sp.Float("0.1", 50): 0.1,
        sp.Integer(10) ** 400: math.inf, sp.oo: math.inf, -sp.oo: -math.inf, sp.S.true: 1.0, sp.S.false: 0.0,
    }
    for s, want in values.items():
        assert ak.from_sympy(s).value == want, s
    for s in (sp.nan, sp.zoo):
        assert math.isnan(ak.from_sympy(s).value)
    # A large integer is rounded once, correctly.
    assert ak.from_sympy(sp.Integer(2**53 + 1) * x).args[0].value == float(2**53 + 1)


def test_functions_with_sympy_conventions():
    x, y = sp.symbols("x y")
    f = ak.lambdify([x, y], [sp.sign(x), sp.Heaviside(x), sp.Heaviside(x, 1), sp.Min(x, y, 0.5), sp.Max(x, 2, y),
                             sp.log(x, 2), sp.Mod(x, y), x ** sp.Rational(1, 3), x ** sp.Rational(-3, 2),
                             sp.sec(x), sp.cot(x), sp.ITE(x > 0, y > 0, y < -1), sp.Xor(x > 0, y > 0)])
    g = sp.lambdify([x, y], [sp.sign(x), sp.Heaviside(x), sp.Heaviside(x, 1), sp.Min(x, y, 0.5), sp.Max(x, 2, y),
                             sp.log(x, 2), sp.Mod(x, y), x ** sp.Rational(1, 3), x ** sp.Rational(-3, 2),
                             sp.sec(x), sp.cot(x), sp.ITE(x > 0, y > 0, y < -1), sp.Xor(x > 0, y > 0)])
    xs = np.array([-2.0, -0.0, 0.0, 0.7, 3.0, 8.0])
    ys = np.array([1.5, 2.0, -1.0, -3.0, 0.25, 3.0])
    with np.errstate(all="ignore"):
        for k, (a, b) in enumerate(zip(f(xs, ys), g(xs, ys))):
            np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-15, err_msg=str(k))


def test_dynamicsymbols_and_their_derivatives_are_symbols():
    from sympy.physics.vector import dynamicsymbols

    q, u = dynamicsymbols("q u")
    e = ak.from_sympy(sp.sin(q) * q.diff() + u**2)
    assert sorted(s.name for s in e.free_symbols()) == ["Derivative(q(t), t)", "q(t)", "u(t)"]
    f = ak.lambdify([q, q.diff(), u], sp.sin(q) * q.diff() + u**2)
    assert f(0.5, 2.0, 3.0) == pytest.approx(math.sin(0.5) * 2.0 + 9.0)


def test_symbols_mapping_renames_and_substitutes():
    x, y = sp.symbols("x y")
    pool = ak.ExprPool()
    a = pool.symbol("a")
    e = ak.from_sympy(x * y + sp.sin(x), pool, symbols={x: a, y: 2.0})
    assert str(e) == "a*2 + sin(a)" or str(e) == "2*a + sin(a)"
    with pytest.raises(errors.ConversionError, match="another ExprPool"):
        ak.from_sympy(x, pool, symbols={x: ak.ExprPool().symbol("q")})
    with pytest.raises(TypeError, match="mapping"):
        ak.from_sympy(x, pool, symbols=[x])


def test_two_symbols_with_one_name_are_refused():
    a, b = sp.Symbol("x"), sp.Symbol("x", positive=True)
    with pytest.raises(errors.ConversionError, match="both named 'x'"):
        ak.from_sympy(a + b)


UNSUPPORTED = [
    (lambda x: sp.Function("f")(x) + 1, "AppliedUndef|f", "undefined function"),
    (lambda x: x + sp.I, "ImaginaryUnit", "real numbers"),
    (lambda x: sp.Integral(sp.sin(x), x), "Integral", "unevaluated integral"),
    (lambda x: sp.Sum(x**2, (x, 1, 10)), "Sum", "unevaluated sum"),
    (lambda x: sp.Derivative(sp.sin(x) * sp.Function("g")(x), x), "Derivative", "unevaluated derivative"),
    (lambda x: sp.MatrixSymbol("A", 2, 2)[0, 1] * x, "MatrixElement", "not supported"),
    (lambda x: sp.gamma(x), "gamma", "no such function"),
    (lambda x: sp.Limit(sp.sin(x) / x, x, 0), "Limit", "unevaluated limit"),
    (lambda x: x + sp.O(x**3), "Order", "O\\(\\) term"),
]


@pytest.mark.parametrize("make, cls, why", UNSUPPORTED)
def test_unsupported_constructs_name_their_class(make, cls, why):
    x = sp.Symbol("x")
    with pytest.raises(errors.ConversionError, match=why) as info:
        ak.from_sympy(make(x))
    message = str(info.value)
    assert any(c in message for c in cls.split("|")), message
    assert "SymPy" in message and "in: " in message


def test_non_sympy_objects_are_refused():
    with pytest.raises(errors.ConversionError, match="not a SymPy or symengine expression"):
        ak.from_sympy(object())
    with pytest.raises(errors.ConversionError, match="not a scalar"):
        ak.from_sympy(sp.Tuple(1, 2))
    with pytest.raises(TypeError, match="ExprPool"):
        ak.from_sympy(sp.Symbol("x"), pool="pool")


def test_symengine_objects_share_the_walker():
    se = pytest.importorskip("symengine")
    x, y = se.symbols("x y")
    exprs = [se.sin(x) / y + se.Rational(1, 3), se.exp(x) - x**se.Rational(1, 2), se.Piecewise((x, x > y), (y, True)),
             se.Min(x, y, 1) + se.Max(x, 2) + se.Abs(y), se.atan2(x, y) * se.floor(x) + se.ceiling(y),
             se.log(x) + se.erf(y) + se.cos(x) ** 3 / (x * y), se.And(x > 0, y < 2) + 0 * x]
    pool = ak.ExprPool()
    out = ak.from_sympy(exprs, pool)
    want = ak.from_sympy([sp.sympify(e) for e in exprs], pool)  # the same expressions via SymPy
    xs, ys = np.array([0.5, 1.5, 3.0]), np.array([2.0, 0.25, 1.0])
    sym = [pool.symbol("x"), pool.symbol("y")]
    for a, b in zip(out, want):
        fa, fb = ak.compile_expr(a, sym, cache=False), ak.compile_expr(b, sym, cache=False)
        np.testing.assert_allclose(ak.numpy_eval(fa, xs, ys), ak.numpy_eval(fb, xs, ys), rtol=1e-15)
    m = ak.from_sympy(se.DenseMatrix([[x, y], [x * y, 1]]))
    assert [len(r) for r in m] == [2, 2]
    with pytest.raises(errors.ConversionError, match="symengine ImaginaryUnit"):
        ak.from_sympy(x + se.I)
    with pytest.raises(errors.ConversionError, match="undefined function"):
        ak.from_sympy(se.Function("f")(x))


# A 1,000,000-node expression (a sum of 125,000 distinct terms, built without SymPy's
# simplification) and a 100,000-deep one convert and compile, in a subprocess so that a
# stack overflow would fail the test rather than kill pytest.
_BIG = """
import sys, time
import sympy as sp
import alkahest as ak
xs = sp.symbols("x0:20")
Add, Mul, Pow, Float, Integer = sp.Add, sp.Mul, sp.Pow, sp.Float, sp.Integer
if sys.argv[1] == "wide":
    terms = []
    for k in range(125_000):
        a, b = xs[k % 20], xs[(7 * k + 3) % 20]
        terms.append(Mul._from_args((Float(1 + k * 1e-6), sp.sin(Add._from_args((a, Float(k * 1e-3)))),
                                     Pow(b, Integer(2 + k % 3), evaluate=False))))
    e = Add._from_args(tuple(terms))
    point = [0.01 * (i + 1) for i in range(20)]
else:
    e = xs[0]
    for k in range(100_000):
        e = Add._from_args((Mul._from_args((Float(0.5), e)), Float(1.0))) if k % 2 else sp.cos(e, evaluate=False)
    point = [0.3] + [0.0] * 19
nodes = sum(1 for _ in sp.preorder_traversal(e)) if sys.argv[1] == "wide" else 0
t0 = time.perf_counter()
a = ak.from_sympy(e)
t1 = time.perf_counter()
f = ak.compile_expr(a, [ak.from_sympy(s, a.pool) for s in xs], cache=False)
t2 = time.perf_counter()
print(nodes, len(a.pool), t1 - t0, t2 - t1, f(*point))
"""


@pytest.mark.parametrize("shape", ["wide", "deep"])
def test_huge_and_deep_expressions_convert_and_compile(shape):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", _BIG, shape], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    nodes, pool_size, convert_s, compile_s, value = run.stdout.split()
    assert math.isfinite(float(value))
    if shape == "wide":
        assert int(nodes) >= 1_000_000
        assert int(pool_size) > 600_000  # distinct terms stay distinct
    else:
        assert int(pool_size) > 100_000


def test_repeated_subtrees_convert_once(monkeypatch):
    from alkahest.interop import walker

    calls = []
    original = walker.RULES["sin"]
    monkeypatch.setitem(walker.RULES, "sin", walker.Rule("sin", lambda c, o, ch: calls.append(o) or original.convert(c, o, ch)))
    x, y = sp.symbols("x y")
    shared = sp.sin(x * y)
    ak.from_sympy([shared * x + shared * y, shared**2])  # one object in three places
    assert len(calls) == 1
    a, b = sp.Add._from_args((x, y)), sp.Add._from_args((x, y))  # equal, distinct objects
    assert a is not b and a == b
    monkeypatch.setitem(walker.RULES, "sin", original)
    add = walker.RULES["Add"]
    monkeypatch.setitem(walker.RULES, "Add", walker.Rule("Add", lambda c, o, ch: calls.append(o) or add.convert(c, o, ch)))
    hash(a), hash(b)  # as SymPy's own operations do
    calls.clear()
    out = ak.from_sympy([sp.Mul._from_args((a, x)), sp.Mul._from_args((b, y))])
    sums = [[c.id for c in o.args if c.op == "add"] for o in out]
    assert len(calls) == 1 and sums[0] == sums[1] and len(sums[0]) == 1


def test_real_and_imaginary_parts_of_real_inputs():
    x = sp.Symbol("x")  # not declared real: SymPy writes Abs(exp(x)) as exp(re(x))
    e = sp.Abs(sp.exp(x)) + sp.im(x) + sp.conjugate(x)
    assert e.has(sp.re)
    f = ak.lambdify([x], e)
    assert f(0.5) == pytest.approx(np.exp(0.5) + 0.5)
    assert f(np.inf) == np.inf


def test_a_repeated_power_found_by_structure_converts_its_base():
    """A product reads the base of a factor x**-n; when that factor was found equal to
    one converted before (a distinct but equal object), its base must still convert."""
    x = sp.Symbol("x")
    first = sp.Pow(sp.Add._from_args((x, sp.Integer(1))), -3, evaluate=False)
    again = sp.Pow(sp.Add._from_args((x, sp.Integer(1))), -3, evaluate=False)  # equal, not the same
    hash(first), hash(again)
    out = ak.from_sympy([first, sp.Mul(sp.Integer(2), again, evaluate=False)])
    f = ak.compile_expr(out, ["x"], cache=False)
    assert f(1.0) == (0.125, 0.25)
