"""alkahest.evaluate against numexpr.evaluate: numexpr's documented examples, the
benchmark suite, every dtype pair numexpr types differently, out=, order and errors."""

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

import alkahest as ak
from alkahest import errors

ne = pytest.importorskip("numexpr")
sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from suite import SUITE  # noqa: E402


def same(got, want):
    """Same dtype and shape; equal values, floats within a few ulp of the larger of the
    value and 1 (numexpr's and alkahest's libm routines differ by ulps, and cancellation
    keeps the absolute error of an operand's size)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    if got.dtype.kind == "f":
        special = ~np.isfinite(want) | ~np.isfinite(got)
        assert np.array_equal(got[special], want[special], equal_nan=True)
        with np.errstate(invalid="ignore"):
            err = np.abs(got - want) / np.maximum(np.abs(want), 1.0)
        assert np.nanmax(err, initial=0.0) <= 1e-14, np.nanmax(err)
    else:
        np.testing.assert_array_equal(got, want)


def test_numexprs_documented_examples():
    # The README and user guide of numexpr, as written there.
    a = np.arange(1e6)
    b = np.arange(1e6)
    for ex in ("a + 1", "a*b-4.1*a > 2.5*b", "sin(a) + arcsinh(a/b)"):
        with np.errstate(all="ignore"):
            same(ak.evaluate(ex), ne.evaluate(ex))
    a = np.arange(10)
    b = np.arange(0, 20, 2)
    same(ak.evaluate("2*a+3*b"), ne.evaluate("2*a+3*b"))  # int64 arithmetic, exact here
    x = np.linspace(-1, 1, 1000)
    same(ak.evaluate("where(x > 0, x**2, 0)"), ne.evaluate("where(x > 0, x**2, 0)"))
    s = np.array([b"abba", b"abbb", b"abbcdef"])
    with pytest.raises(errors.ParseError, match="strings are not supported"):
        ak.evaluate("b'abba' == s")
    del s


@pytest.mark.parametrize("case", [c for c in SUITE if c.numexpr], ids=lambda c: c.name)
def test_suite_cases_equal_numexpr(case):
    arrays = case.inputs(np.random.default_rng(3), 10_000)
    env = dict(zip(case.names, arrays))
    same(ak.evaluate(case.numexpr, local_dict=env), ne.evaluate(case.numexpr, local_dict=env))


VALUES = {
    "float64": np.linspace(-2, 2, 7), "float32": np.linspace(-2, 2, 7).astype(np.float32),
    "int32": np.arange(-3, 4, dtype=np.int32), "int64": np.arange(-3, 4, dtype=np.int64),
    "bool": np.array([True, False, True, True, False, False, True]), "uint8": np.arange(7, dtype=np.uint8),
}
EXPRESSIONS = ["x + y", "x * 2", "x * 2.0", "x / y", "x > y", "where(x > 0, 1, 2)", "where(x > 0, x, y)",
               "sin(x)", "abs(x)", "x ** 2", "x % y", "x // y", "(x > 0) & (y > 0)", "round(x)", "sign(x)", "-x",
               "x*y + 1.5", "arctan2(x, y)", "maximum(x, y)", "floor(x) * y", "isnan(x) | isinf(y)", "~(x > y)",
               "x + y > 1", "2*x + 3*y - 1", "(x - y) * (x + y) / 2", "copysign(x, y)", "trunc(x / 3)"]


@pytest.mark.parametrize("ex", EXPRESSIONS)
def test_numexprs_dtype_and_values_or_a_clear_refusal(ex):
    """For every pair of input dtypes: numexpr's dtype and values, or EvaluateError
    (never another dtype)."""
    refused = 0
    for x, y in itertools.product(VALUES.values(), repeat=2):
        env = {"x": x, "y": y}
        try:
            with np.errstate(all="ignore"):
                want = ne.evaluate(ex, local_dict=env)
        except Exception:  # noqa: BLE001 - numexpr has no such signature: nothing to match
            continue
        try:
            with np.errstate(all="ignore"):
                got = ak.evaluate(ex, local_dict=env)
        except errors.EvaluateError as e:
            assert "numexpr computes" in str(e) and "^" in str(e), str(e)
            refused += 1
            continue
        same(got, want)
    # float64 operands are never refused.
    assert ak.evaluate(ex, local_dict={"x": VALUES["float64"], "y": VALUES["float64"] + 3}).shape == (7,)
    assert refused < 36


def test_integer_arithmetic_is_exact_or_refused():
    big = np.array([2**62, 1])
    with pytest.raises(errors.EvaluateError, match="int64 arithmetic.*2\\*\\*53"):
        ak.evaluate("big + 1")
    i32 = np.array([2**30, 3], dtype=np.int32)
    with pytest.raises(errors.EvaluateError, match="int32 arithmetic"):
        ak.evaluate("i32 * 4")
    same(ak.evaluate("i32 * 1"), ne.evaluate("i32 * 1"))
    with pytest.raises(errors.EvaluateError, match="int32 arithmetic"):
        ak.evaluate("i32 ** 2")


def test_variables_from_the_callers_frame_and_dicts():
    a = np.arange(3.0)

    def inner():
        b = np.ones(3)
        return ak.evaluate("a * 2 + b")  # b local, a from the enclosing function is not visible

    with pytest.raises(errors.UnboundSymbolError, match="'a'"):
        inner()
    b = np.full(3, 5.0)
    same(ak.evaluate("a + b"), a + b)
    same(ak.evaluate("a + b", local_dict={"a": a, "b": a}), 2 * a)
    same(ak.evaluate("a + b", local_dict={"a": a}, global_dict={"b": b}), a + b)
    same(ak.evaluate("pi * a"), np.pi * a)  # pi, inf and nan are constants unless defined
    pi = 3.0
    same(ak.evaluate("pi * a"), pi * a)


def test_out_is_returned_may_alias_an_input_and_is_cast():
    a = np.arange(6.0).reshape(2, 3)
    b = np.ones((2, 3))
    want = 2 * a + b
    r = ak.evaluate("2*a + b", out=a)
    assert r is a
    same(a, want)
    o32 = np.empty((2, 3), np.float32)
    assert ak.evaluate("a * b", out=o32) is o32
    np.testing.assert_allclose(o32, (a * b).astype(np.float32))
    with pytest.raises(errors.DTypeError, match="casting='safe'"):
        ak.evaluate("a * b", out=np.empty((2, 3), np.float32), casting="safe")
    with pytest.raises(errors.ShapeError):
        ak.evaluate("a * b", out=np.empty(6))
    bools = np.empty((2, 3), bool)
    assert ak.evaluate("a > b", out=bools) is bools and bools.dtype == bool


def test_fortran_order_is_kept():
    f = np.asfortranarray(np.random.default_rng(0).random((4, 5)))
    g = np.asfortranarray(np.random.default_rng(1).random((4, 5)))
    for order in ("K", "A", "F"):
        r = ak.evaluate("f * g + 1", order=order)
        assert r.flags.f_contiguous
        same(r, ne.evaluate("f * g + 1", order=order))
    assert ak.evaluate("f * g", order="C").flags.c_contiguous
    out = np.empty((4, 5), order="F")
    assert ak.evaluate("f + g", out=out) is out
    same(out, f + g)
    with pytest.raises(ValueError, match="order"):
        ak.evaluate("f", order="X")


def test_scalars_give_zero_dimensional_arrays():
    x = 3.0
    for ex in ("x * 2", "2.0 * 3", "x > 1"):
        same(ak.evaluate(ex), ne.evaluate(ex))


def test_what_alkahest_adds_and_what_it_refuses():
    a = np.linspace(-1, 1, 5)
    from math import erf

    np.testing.assert_allclose(ak.evaluate("erf(a) + cbrt(a)"), [erf(v) + np.cbrt(v) for v in a], rtol=1e-15)
    for ex, match in [("sum(a)", "reduction"), ("max(a)", "reduction"), ("real(a)", "complex"), ("fmod(a, 2)", "fmod"),
                      ("a + 1j", "complex"), ("frobnicate(a)", "unknown function"), ("sin(a, a)", "takes 1 argument"),
                      ("a & a", "bitwise")]:
        with pytest.raises((errors.EvaluateError, errors.ParseError), match=match):
            ak.evaluate(ex)
    c = a.astype(np.complex128)
    with pytest.raises(errors.EvaluateError, match="complex"):
        ak.evaluate("c + 1")
    with pytest.raises(TypeError, match="str"):
        ak.evaluate(b"a + 1")


def test_compiled_once_per_expression_and_kinds():
    from alkahest.interop import evaluate as module

    a = np.arange(4.0)
    ak.evaluate("a * 7 + 0.25")
    first = module._CACHE.compiled(module._CACHE.program("a * 7 + 0.25"), {"a": "double"})
    ak.evaluate("a * 7 + 0.25")
    assert module._CACHE.compiled(module._CACHE.program("a * 7 + 0.25"), {"a": "double"}) is first
    a = np.arange(4)
    ak.evaluate("a * 7 + 0.25")  # an int64 input: another compiled function
    assert module._CACHE.compiled(module._CACHE.program("a * 7 + 0.25"), {"a": "long"}) is not first
