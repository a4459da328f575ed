"""Derivatives: every rule checked against high-precision central differences (mpmath),
agreement with SymPy's diff, forward = reverse, the reverse-mode size bound, and the
compiled Jacobian's shapes and values."""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import alkahest as ak
from alkahest import _native
from strategies import SETTINGS

mp = mpmath.mp

# Every operation of the DAG; conditions and steps appear inside where/min/max too.
SMOOTH_UNARY = ["neg", "sqrt", "cbrt", "exp", "expm1", "log", "log1p", "log2", "log10", "sin", "cos", "tan",
                "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "erf", "erfc", "abs"]
STEP_UNARY = ["floor", "ceil", "round", "not"]
ARITH = ["add", "sub", "mul", "div", "pow", "atan2", "min", "max", "copysign"]
CONDITION = ["lt", "le", "gt", "ge", "eq", "ne", "and", "or"]


def _mp_round(a):
    return mpmath.sign(a) * mpmath.floor(abs(a) + mpmath.mpf(0.5))


MP_UNARY = {
    "neg": lambda a: -a, "sqrt": mpmath.sqrt, "cbrt": mpmath.cbrt, "exp": mpmath.exp, "expm1": mpmath.expm1,
    "log": mpmath.log, "log1p": mpmath.log1p, "log2": lambda a: mpmath.log(a, 2), "log10": mpmath.log10,
    "sin": mpmath.sin, "cos": mpmath.cos, "tan": mpmath.tan, "asin": mpmath.asin, "acos": mpmath.acos,
    "atan": mpmath.atan, "sinh": mpmath.sinh, "cosh": mpmath.cosh, "tanh": mpmath.tanh, "asinh": mpmath.asinh,
    "acosh": mpmath.acosh, "atanh": mpmath.atanh, "erf": mpmath.erf, "erfc": mpmath.erfc, "abs": abs,
    "floor": mpmath.floor, "ceil": mpmath.ceil, "round": _mp_round, "not": lambda a: mpmath.mpf(a == 0),
}
MP_BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
    "pow": lambda a, b: a ** b, "atan2": mpmath.atan2, "min": min, "max": max,
    "copysign": lambda a, b: abs(a) * (1 if b >= 0 else -1),
    "lt": lambda a, b: mpmath.mpf(a < b), "le": lambda a, b: mpmath.mpf(a <= b), "gt": lambda a, b: mpmath.mpf(a > b),
    "ge": lambda a, b: mpmath.mpf(a >= b), "eq": lambda a, b: mpmath.mpf(a == b), "ne": lambda a, b: mpmath.mpf(a != b),
    "and": lambda a, b: mpmath.mpf(a != 0 and b != 0), "or": lambda a, b: mpmath.mpf(a != 0 or b != 0),
}


def mp_evaluator(expr, names):
    """A function of mpf arguments evaluating ``expr`` in mpmath at the working precision;
    raises ValueError where the value is complex or not finite."""
    nodes, (root,) = _native.dag([expr])

    def f(*args):
        env = dict(zip(names, args))
        vals = []
        for op, payload, children in nodes:
            a = [vals[c] for c in children]
            if op == "symbol":
                v = env[payload]
            elif op == "const":
                v = mpmath.mpf(payload)
            elif op == "where":
                v = a[1] if a[0] != 0 else a[2]
            elif op in MP_UNARY:
                v = MP_UNARY[op](*a)
            else:
                v = MP_BINARY[op](*a)
            if isinstance(v, mpmath.mpc) or not mpmath.isfinite(v):
                raise ValueError("not a finite real")
            vals.append(mpmath.mpf(v))
        return vals[root]

    return f


leaves = st.one_of(st.sampled_from(["x", "y"]), st.sampled_from([0.5, 2.0, -1.5, 3.0]))


def extend(children):
    return st.one_of(
        st.tuples(st.sampled_from(SMOOTH_UNARY), children),
        st.tuples(st.sampled_from(STEP_UNARY), children),
        st.tuples(st.sampled_from(ARITH), children, children),
        st.tuples(st.just("where"), st.tuples(st.sampled_from(CONDITION), children, children), children, children),
    )


trees = st.recursive(leaves, extend, max_leaves=8)


def build(tree, pool):
    if isinstance(tree, str):
        return pool.symbol(tree)
    if isinstance(tree, float):
        return pool.constant(tree)
    op, *args = tree
    built = [build(a, pool) for a in args]
    if all(not isinstance(b, ak.Expr) for b in built):
        built[0] = pool.constant(built[0])
    return _native.apply(op, *built)


def central_difference(f, x, y, var, order):
    """The ``order``-th derivative of ``f`` in ``var`` at (x, y) by central differences at
    two steps; None if they disagree, or if the one-sided differences do (a kink, jump or
    branch cut nearby)."""
    def at(d):
        return f(x + d, y) if var == "x" else f(x, y + d)

    def estimate(h):
        if order == 1:
            return (at(h) - at(-h)) / (2 * h)
        return (at(h) - 2 * at(0) + at(-h)) / (h * h)

    a, b = estimate(mpmath.mpf(10) ** -14), estimate(mpmath.mpf(10) ** -16)
    h = mpmath.mpf(10) ** -20
    if order == 1:
        right, left = (at(h) - at(0)) / h, (at(0) - at(-h)) / h
    else:
        right = (at(2 * h) - 2 * at(h) + at(0)) / (h * h)
        left = (at(0) - 2 * at(-h) + at(-2 * h)) / (h * h)
    if abs(a - b) > mpmath.mpf(10) ** -20 * max(1, abs(a)) or abs(right - left) > mpmath.mpf(10) ** -6 * max(1, abs(a)):
        return None
    return b


@settings(SETTINGS, max_examples=300)
@given(trees, st.floats(0.05, 0.95), st.floats(0.05, 0.95), st.sampled_from(["x", "y"]), st.sampled_from([1, 2]))
@example(("where", ("eq", "x", "y"), "x", "y"), 0.5, 0.5, "x", 1)
def test_derivative_formulas_match_mpmath_central_differences(tree, x0, y0, var, order):
    """The derivative expression, evaluated at 60 digits, equals the central difference of
    the function to 1e-15 (relative): this checks the rules themselves, free of rounding.
    Evaluated in double precision (the interpreter), it is within 1e-9 of the same value
    where the derivative is well conditioned (scale: the sum of its terms' magnitudes)."""
    # On the diagonal an equality condition flips on a set of measure zero: the rules
    # differentiate each branch, a difference quotient sees the other one.
    assume(x0 != y0)
    pool = ak.ExprPool()
    expr = build(tree, pool)
    assume(isinstance(expr, ak.Expr))
    d = ak.diff(expr, var, order)
    with mp.workprec(200):
        f = mp_evaluator(expr, ["x", "y"])
        df = mp_evaluator(d, ["x", "y"])
        x, y = mpmath.mpf(x0), mpmath.mpf(y0)
        try:
            ref = central_difference(f, x, y, var, order)
            formula = df(x, y)
        except (ValueError, ZeroDivisionError):
            assume(False)
            return
        assume(ref is not None)
        assert abs(formula - ref) <= mpmath.mpf(10) ** -15 * max(1, abs(ref)), (str(expr), str(d), formula, ref)
    got = ak.compile_expr(d, [pool.symbol("x"), pool.symbol("y")], ak.CompileConfig(tier="interpreter"))(x0, y0)
    if abs(float(ref)) < 1e12:
        assert math.isclose(got, float(ref), rel_tol=1e-6, abs_tol=1e-6) or not math.isfinite(got), (str(d), got, ref)


@pytest.mark.parametrize("op", SMOOTH_UNARY)
def test_every_unary_rule_matches_mpmath(op):
    pool = ak.ExprPool()
    x = pool.symbol("x")
    at = 1.37 if op == "acosh" else 0.37
    d = ak.diff(_native.apply(op, x), x)
    with mp.workprec(200):
        ref = mpmath.diff(MP_UNARY[op], mpmath.mpf(at))
        got = mp_evaluator(d, ["x"])(mpmath.mpf(at))
        assert abs(got - ref) <= mpmath.mpf(10) ** -15 * max(1, abs(ref)), (op, str(d))  # constants are doubles


@pytest.mark.parametrize("op", ARITH)
def test_every_binary_rule_matches_mpmath(op):
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    e = _native.apply(op, x, y)
    g = ak.gradient(e, [x, y])
    at = (mpmath.mpf("0.7"), mpmath.mpf("-1.3") if op != "pow" else mpmath.mpf("1.3"))
    with mp.workprec(200):
        for k, d in enumerate(g):
            ref = mpmath.diff(lambda *a: MP_BINARY[op](*a), at, tuple(int(i == k) for i in range(2)))
            got = mp_evaluator(d, ["x", "y"])(*at)
            assert abs(got - ref) <= mpmath.mpf(10) ** -15 * max(1, abs(ref)), (op, k, str(d))


def test_structural_zeros_and_selected_branches():
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    assert ak.diff(ak.floor(x) + (x < y) + ak.round(y), x).value == 0.0
    assert str(ak.diff(abs(x), x)) == "copysign(1, x)"
    f = ak.compile_expr(ak.gradient(ak.max(x * x, y), [x, y]), [x, y])
    assert f(3.0, 1.0) == (6.0, 0.0) and f(0.5, 1.0) == (0.0, 1.0)
    w = ak.compile_expr(ak.diff(ak.where(x > 0, ak.sin(x), x**3), x), [x])
    assert w(0.5) == math.cos(0.5) and w(-2.0) == 12.0


def test_derivative_is_not_zero_times_infinity():
    """A structural zero is never `0 * a`: d/dx (x + exp(y)) at y = 1000 is 1, not NaN."""
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    f = ak.compile_expr(ak.diff(x + ak.exp(y) * ak.floor(x), x), [x, y])
    assert f(0.5, 1000.0) == 1.0


def test_forward_and_reverse_give_the_same_jacobian():
    pool = ak.ExprPool()
    xs = pool.symbols("a b c d")
    exprs = [ak.sin(xs[0] * xs[1]) + xs[2] ** 3, ak.atan2(xs[3], xs[0]) * ak.exp(xs[1]), ak.sqrt(xs[2] ** 2 + xs[3] ** 2)]
    fwd = ak.jacobian(exprs, xs, mode="forward")
    rev = ak.jacobian(exprs, xs, mode="reverse")
    at = [0.3, -0.7, 1.1, 0.4]
    for rf, rr in zip(fwd, rev):
        a = ak.compile_expr(rf, xs)(*at)
        b = ak.compile_expr(rr, xs)(*at)
        np.testing.assert_allclose(a, b, rtol=1e-14)


def test_higher_order_and_hessian_symmetry():
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    e = ak.exp(x * y) * ak.sin(x)
    h = ak.hessian(e, [x, y])
    f = ak.compile_expr([h[0][1], h[1][0], h[0][0]], [x, y])
    a, b, c = f(0.3, 0.8)
    assert math.isclose(a, b, rel_tol=1e-14)
    with mp.workprec(200):
        ref = mpmath.diff(lambda u, v: mpmath.exp(u * v) * mpmath.sin(u), (mpmath.mpf(0.3), mpmath.mpf(0.8)), (2, 0))
    assert math.isclose(c, float(ref), rel_tol=1e-13)
    assert ak.diff(x**5, x, 5).value == 120.0
    assert ak.diff(x**5, x, 6).value == 0.0
    assert ak.diff(x, x, 0) is not None and ak.diff(x, x, 0).id == x.id


def test_agrees_with_sympy_diff():
    sympy = pytest.importorskip("sympy")
    a, b = sympy.symbols("a b", real=True)
    exprs = [sympy.sin(a * b) ** 2 / (1 + a**2), sympy.atan2(b, a) * sympy.exp(-a * b), sympy.erf(a) * sympy.log(1 + b**2),
             sympy.Abs(a - b) ** sympy.Rational(3, 2), sympy.asinh(a) * sympy.acosh(2 + b**2), a**b]
    at = {a: 0.7, b: 1.9}
    for e in exprs:
        for v in (a, b):
            ref = float(sympy.diff(e, v).evalf(30, subs=at))
            ours = ak.from_sympy(e)
            d = ours.diff(ours.pool.symbol(str(v)))
            got = ak.compile_expr(d, [ours.pool.symbol("a"), ours.pool.symbol("b")])(0.7, 1.9)
            assert math.isclose(got, ref, rel_tol=1e-13), (e, v, got, ref)
            ref2 = float(sympy.diff(e, v, 2).evalf(30, subs=at))
            got2 = ak.compile_expr(d.diff(ours.pool.symbol(str(v))), [ours.pool.symbol("a"), ours.pool.symbol("b")])(0.7, 1.9)
            assert math.isclose(got2, ref2, rel_tol=1e-11), (e, v, got2, ref2)


def random_model(pool, n_inputs, n_ops, seed):
    """A DAG of ~n_ops operations over n_inputs symbols: each new node combines earlier
    nodes (so values are shared), as generated models and unrolled loops do."""
    rng = np.random.default_rng(seed)
    xs = pool.symbols(" ".join(f"x{i}" for i in range(n_inputs)))
    nodes = list(xs)
    unary = [ak.sin, ak.cos, ak.exp, ak.tanh, ak.sqrt, ak.log1p, ak.atan]
    for _ in range(n_ops):
        r = rng.random()
        a = nodes[int(rng.integers(len(nodes)))]
        b = nodes[int(rng.integers(max(0, len(nodes) - 60), len(nodes)))]
        if r < 0.3:
            e = a * b
        elif r < 0.6:
            e = a + b
        elif r < 0.7:
            e = a - b
        elif r < 0.8:
            e = a / (1 + b * b)
        else:
            e = unary[int(rng.integers(len(unary)))](a * a if unary is ak.sqrt else a)
        nodes.append(e)
    total = nodes[-1]
    for e in nodes[-40:]:
        total = total + e
    return total, xs


def test_reverse_mode_gradient_is_a_small_multiple_of_the_function():
    pool = ak.ExprPool()
    f, xs = random_model(pool, 100, 1000, seed=1)
    base = ak.lower(f, xs).n_ops
    grad = ak.gradient(f, xs)
    both = ak.lower([f] + grad, xs).n_ops
    assert len(grad) == 100
    assert both <= 5 * base, (both, base)
    # Forward mode builds 100 sweeps: larger, but the same numbers.
    at = np.linspace(0.1, 0.9, 100)
    rev = ak.compile_expr(grad, xs, ak.CompileConfig(tier="interpreter"))(*at)
    fwd = ak.compile_expr(ak.jacobian([f], xs, mode="forward")[0], xs, ak.CompileConfig(tier="interpreter"))(*at)
    np.testing.assert_allclose(rev, fwd, rtol=1e-10, atol=1e-12)


def test_compile_jacobian_scalar_bulk_and_sparse():
    pool = ak.ExprPool()
    x, y, z = pool.symbols("x y z")
    exprs = [x * y, ak.sin(z), x + ak.floor(y)]
    f = ak.compile_jacobian(exprs, [x, y, z])
    assert f.nnz == 4
    values, J = f(2.0, 3.0, 0.5)
    np.testing.assert_array_equal(values, [6.0, math.sin(0.5), 5.0])
    np.testing.assert_array_equal(J, [[3.0, 2.0, 0.0], [0.0, 0.0, math.cos(0.5)], [1.0, 0.0, 0.0]])
    xs = np.linspace(0, 1, 7)
    values, J = f(xs, 3.0, xs[::-1].copy())
    assert values.shape == (3, 7) and J.shape == (3, 3, 7)
    np.testing.assert_allclose(J[1, 2], np.cos(xs[::-1]), rtol=1e-15)
    np.testing.assert_array_equal(J[0, 0], np.full(7, 3.0))
    v, data = f.nonzeros(2.0, 3.0, 0.5)
    sp = f.sparsity
    np.testing.assert_array_equal(sp.indices, [0, 1, 2, 0])
    assert data.tolist() == [3.0, 2.0, math.cos(0.5), 1.0]
    assert (ak.jacobian_sparsity(exprs, [x, y, z]).toarray() == sp.toarray()).all()
    # The Jacobian in some inputs only: the others are parameters.
    g = ak.compile_jacobian(exprs, [x, y, z], wrt=[z, x])
    values, J = g(2.0, 3.0, 0.5)
    np.testing.assert_array_equal(J, [[0.0, 3.0], [math.cos(0.5), 0.0], [0.0, 1.0]])
    with pytest.raises(ak.InvalidVarsError, match="not among"):
        ak.compile_jacobian(exprs, [x, y], wrt=[z])


def test_errors_name_the_mistake():
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    with pytest.raises(ak.InvalidVarsError, match="symbols"):
        ak.diff(x * y, x * y)
    with pytest.raises(ak.InvalidVarsError, match="twice"):
        ak.jacobian([x], [x, x])
    with pytest.raises(ValueError, match="mode"):
        ak.gradient(x, [x], mode="sideways")
    with pytest.raises(ak.PoolMismatchError):
        ak.diff(x, ak.ExprPool().symbol("x"))
    with pytest.raises(ValueError, match="non-negative"):
        ak.diff(x, x, -1)
    assert ak.diff(x * y, "y").id == x.id
