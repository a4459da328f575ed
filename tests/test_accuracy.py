"""The per-function error bounds stated in docs/accuracy.md hold (re-measured against
mpmath on fresh points, scalar and bulk)."""

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("mpmath")
import alkahest as ak  # noqa: E402
from accuracy import FUNCTIONS, documented, measure  # noqa: E402

DOC = Path(__file__).parents[1] / "docs" / "accuracy.md"
BOUNDS = documented(DOC)


def test_every_function_is_documented():
    assert set(BOUNDS) == set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_documented_bound_holds(name):
    scalar, bulk = measure(name, 5000, seed=7)
    want_scalar, want_bulk = BOUNDS[name]
    assert scalar <= want_scalar, f"{name}: scalar error {scalar:.2f} ulp above the documented {want_scalar}"
    if ak._native.vector_math_isa() in ("avx512",):  # the bulk column was measured with AVX-512 libmvec
        assert bulk <= want_bulk, f"{name}: bulk error {bulk:.2f} ulp above the documented {want_bulk}"


BOUNDS32 = documented(DOC, "float32")


def test_every_function_is_documented_in_float32():
    assert set(BOUNDS32) == set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_documented_float32_bound_holds(name):
    scalar, bulk = measure(name, 3000, seed=11, dtype="float32")
    want_scalar, want_bulk = BOUNDS32[name]
    assert scalar <= want_scalar, f"{name}: float32 scalar error {scalar:.2f} ulp above the documented {want_scalar}"
    if ak._native.vector_math_isa() in ("avx512",):  # the bulk column was measured with AVX-512 libmvec
        assert bulk <= want_bulk, f"{name}: float32 bulk error {bulk:.2f} ulp above the documented {want_bulk}"


TIERS = [t for t in ak.KNOWN_TIERS if t in ak.AVAILABLE_TIERS]
EXPONENTS = st.one_of(st.integers(-20, 20), st.integers(-(2**31) + 1, 2**31 - 1)).filter(lambda n: n not in (0, 1))


@given(n=EXPONENTS, logs=st.lists(st.floats(-1000, 1000), min_size=1, max_size=50), negative=st.booleans())
@settings(max_examples=60, deadline=None)
def test_integer_powers_are_within_two_ulp_of_the_exact_value(n, logs, negative):
    """x**n against mpmath for |n| < 2^31, at bases whose power is a normal double
    (|x**n| = 2**t for t in [-1000, 1000]); every tier gives the same bits."""
    import mpmath
    import numpy as np

    mpmath.mp.prec = 320
    xs = np.array([(-1.0 if negative else 1.0) * 2.0 ** (t / n) for t in logs])
    pool = ak.ExprPool()
    x = pool.symbol("x")
    results = [ak.numpy_eval(ak.compile_expr(x**n, [x], ak.CompileConfig(tier=t), cache=False), xs) for t in TIERS]
    assert all(r.tobytes() == results[0].tobytes() for r in results), "tiers differ"
    for v, got in zip(xs, results[0]):
        exact = mpmath.mpf(float(v)) ** n
        if not (2.0**-1022 <= abs(exact) < 2.0**1023):
            continue  # the base was rounded into overflow or the subnormal range
        err = abs(mpmath.mpf(float(got)) - exact) / mpmath.mpf(math.ulp(float(exact)))
        assert err <= 2, f"{v!r}**{n}: {got!r} is {float(err):.2f} ulp from {exact}"


@pytest.mark.parametrize("n", [4, 5, -2, -3, 6, 17, 1000, -1001])
def test_integer_powers_of_special_values_are_pows(n):
    import numpy as np

    pool = ak.ExprPool()
    x = pool.symbol("x")
    vals = np.array([-0.0, 0.0, np.inf, -np.inf, np.nan, 1e160, -1e160, 1e-80, -1e-80, 1e308, 5e-324, -1.0])
    with np.errstate(all="ignore"):
        want = np.power(vals, float(n))
    for tier in TIERS:
        got = ak.numpy_eval(ak.compile_expr(x**n, [x], ak.CompileConfig(tier=tier), cache=False), vals)
        for v, g, w in zip(vals, got, want):
            same = (np.isnan(g) and np.isnan(w)) or (g == w and np.signbit(g) == np.signbit(w))
            assert same or abs(g - w) <= 2 * np.spacing(abs(w)), f"{tier}: {v!r}**{n} = {g!r}, pow gives {w!r}"


def test_fastmath_keeps_the_plain_chain_on_every_tier():
    import numpy as np

    pool = ak.ExprPool()
    x = pool.symbol("x")
    fast = ak.CompileConfig(tier="interpreter", fastmath=True)
    assert any(ins[0] == "fma" for ins in ak.lower(x**5, [x]).instructions())
    assert all(ins[0] != "fma" for ins in ak._native.lower([x**5], [x], fastmath=True).instructions())
    f = ak.compile_expr(x**1000, [x], fast)
    g = ak.compile_expr(x**1000, [x], ak.CompileConfig(tier="interpreter"))
    assert f is not g and f.tape.n_ops < 20 < g.tape.n_ops  # separate cache entries, separate tapes
    xs = np.linspace(0.9, 1.1, 1001)
    assert not np.array_equal(ak.numpy_eval(f, xs), ak.numpy_eval(g, xs))  # the chain's error shows
    assert ak.compile_expr(x**-2, [x], fast)(1e160) == 0.0  # 1/(x*x): early overflow, as documented


# Sums, differences and products of four symbols and small integers: on integer inputs
# every result is exact, so however fastmath regroups them, the numbers must not change.
_LEAVES = st.one_of(st.sampled_from(["w", "x", "y", "z"]), st.integers(-3, 3))
_SUMS_AND_PRODUCTS = st.recursive(
    _LEAVES, lambda inner: st.one_of(st.tuples(st.sampled_from(["+", "-", "*"]), inner, inner),
                                     st.tuples(st.just("neg"), inner)), max_leaves=12)


def _build(tree, syms):
    if isinstance(tree, str):
        return syms[tree]
    if isinstance(tree, int):
        return tree  # alkahest makes it a constant where it meets an expression
    if tree[0] == "neg":
        return -_build(tree[1], syms)
    op, a, b = tree
    a, b = _build(a, syms), _build(b, syms)
    if isinstance(a, int) and isinstance(b, int):
        return {"+": a + b, "-": a - b, "*": a * b}[op]
    return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b}[op]()


@settings(max_examples=200, deadline=None)
@given(st.lists(_SUMS_AND_PRODUCTS, min_size=1, max_size=4),
       st.lists(st.tuples(*[st.integers(-50, 50)] * 4), min_size=1, max_size=5))
def test_fastmath_regrouping_of_sums_and_products_keeps_exact_results(trees, points):
    pool = ak.ExprPool()
    syms = dict(zip("wxyz", pool.symbols("w x y z")))
    outs = [_build(t, syms) for t in trees]
    outs = [o if isinstance(o, ak.Expr) else syms["w"] * 0.0 + o for o in outs]  # a bare number
    order = [syms[s] for s in "wxyz"]
    exact = ak.compile_expr(outs, order, ak.CompileConfig(tier="interpreter"), cache=False)
    fast = ak.compile_expr(outs, order, ak.CompileConfig(tier="interpreter", fastmath=True), cache=False)
    assert fast.tape.n_ops <= exact.tape.n_ops + len(outs)
    for p in points:
        assert fast(*map(float, p)) == exact(*map(float, p)), (trees, p)
