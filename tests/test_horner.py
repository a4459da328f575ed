"""horner: round trip, operation count, errors."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import alkahest as ak


@settings(max_examples=100)
@given(st.lists(st.floats(-5, 5).filter(lambda c: abs(c) > 1e-3), min_size=2, max_size=12))
def test_dense_polynomial_round_trip_and_op_count(coeffs):
    # A leading coefficient of +-1 saves the first multiplication (1*x is x); see below.
    assume(abs(coeffs[-1]) != 1.0)
    pool = ak.ExprPool()
    x = pool.symbol("x")
    naive = sum((c * x**k for k, c in enumerate(coeffs)), pool.constant(0.0))
    h = ak.horner(naive, x)
    n = len(coeffs) - 1
    ops = [i[0] for i in ak.lower(h, [x]).instructions() if i[0] not in ("input", "const")]
    # Adding a negative coefficient is built as subtracting its magnitude.
    assert ops.count("mul") == n and ops.count("add") + ops.count("sub") == n and len(ops) == 2 * n, str(h)
    f = ak.compile_expr(naive, [x], cache=False)
    g = ak.compile_expr(h, [x], cache=False)
    pts = np.linspace(-1.5, 1.5, 101)
    want, got = ak.numpy_eval(f, pts), ak.numpy_eval(g, pts)
    scale = sum(abs(c) * 1.5**k for k, c in enumerate(coeffs))
    assert np.max(np.abs(got - want)) <= 64 * np.finfo(float).eps * scale


def test_unit_leading_coefficient_saves_a_multiplication(pool):
    x = pool.symbol("x")
    ops = [i[0] for i in ak.lower(ak.horner(x**3 + 2 * x**2 + 3 * x + 4, x), [x]).instructions()]
    assert (ops.count("mul"), ops.count("add")) == (2, 3)


def test_symbolic_coefficients_and_shape(xy):
    x, y = xy
    e = 3 * x**2 + y * x - 1 + (x + y) ** 2
    h = ak.horner(e, x)
    assert "0*" not in str(h), str(h)  # no terms the original never computed
    assert str(ak.horner(3 * x**2 + y * x - 1, x)) == "x*(y + 3*x) - 1"
    assert str(ak.horner(x**4 + 2, x)) == "x*(x*(x*x)) + 2"
    f, g = (ak.compile_expr(v, [x, y], cache=False) for v in (e, h))
    for a, b in [(0.5, 2.0), (-1.25, 3.0), (2.0, -0.5)]:
        assert g(a, b) == pytest.approx(f(a, b), rel=1e-14)
    assert ak.horner(y * 2 + 1, x).id == (y * 2 + 1).id  # degree 0: unchanged


def test_division_by_a_constant_and_powers_expand(xy):
    x, y = xy
    e = (x + 1) ** 3 / y
    h = ak.horner(e, x)
    f, g = (ak.compile_expr(v, [x, y], cache=False) for v in (e, h))
    assert g(0.7, 3.0) == pytest.approx(f(0.7, 3.0), rel=1e-14)


@pytest.mark.parametrize("bad", ["sin", "div", "pow"])
def test_non_polynomials_are_refused(xy, bad):
    x, y = xy
    e = {"sin": ak.sin(x) + 1, "div": 1 / (x + 1), "pow": x**0.5 + y}[bad]
    with pytest.raises(ak.ExpressionError, match="not a polynomial in x"):
        ak.horner(e, x)


def test_var_must_be_a_symbol(xy):
    x, y = xy
    with pytest.raises(ak.ExpressionError, match="symbol"):
        ak.horner(x * y, x + 1)
    with pytest.raises(ak.PoolMismatchError):
        ak.horner(x * y, ak.ExprPool().symbol("x"))
