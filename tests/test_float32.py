"""float32 on every CPU tier (``CompileConfig(dtype=...)``): results within the stated
bound of the float64 result rounded to float32, tiers identical bit for bit, NumPy's
promotion rules for inputs and outputs, and the edge values of the float32 range.

The bound (docs/accuracy.md): operations that are correctly rounded in float32 (``+ - * /
sqrt``, and the exact ones: ``abs``, ``floor``, ``min``, comparisons, ...) give exactly the
float64 result rounded to float32 on float32 inputs (53 bits hold twice 24 plus 2, so the
double rounding is exact); integer powers (``fma``) within 2 ulp; every function call (``sin``,
``pow``, ...: libm's float routines in scalar calls, libmvec's in bulk) within 4 ulp.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alkahest as ak
from alkahest.ops import OPS, TABLE

TIERS = [t for t in ak.KNOWN_TIERS if t in ak.AVAILABLE_TIERS]
F32 = np.float32

#: Ulps of float32 allowed between an operation's float32 result and its float64 result
#: rounded to float32, by op class (see the module's description).
BOUND = {"arithmetic": 0, "exact": 0, "compare": 0, "logic": 0, "select": 0, "call": 4}
#: ``fma`` is tested through ``x**5`` (two compensated products): within 2 ulp.
FMA_BOUND = 2

#: Edge values: signed zeros, infinities, NaN, float32 subnormals and the smallest
#: normal, the largest finite float32, values whose squares or exponentials overflow
#: float32 but not float64.
EDGES = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-40, 1.17549435e-38, 3.4028235e38,
                  -3.4028235e38, 1e20, 88.8, -103.9, 0.5, 1.0, -1.0, 2.5, 1e-7], dtype=F32)

FLOATS32 = st.floats(width=32, allow_nan=True, allow_infinity=True)


def ordered(a: np.ndarray) -> np.ndarray:
    """float32 values as integers in the order of the reals (adjacent floats differ by 1)."""
    bits = a.astype(F32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)


def ulps32(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Distance in float32 ulps; 0 where both are NaN, huge where only one is."""
    got, want = np.asarray(got, F32), np.asarray(want, F32)
    d = np.abs(ordered(got) - ordered(want)).astype(np.float64)
    both_nan = np.isnan(got) & np.isnan(want)
    one_nan = np.isnan(got) ^ np.isnan(want)
    return np.where(both_nan, 0.0, np.where(one_nan, np.inf, d))


def build(op: str, pool: ak.ExprPool):
    """An expression of ``op`` on the first symbols (``fma`` through an integer power, the
    one way expressions reach it)."""
    a, b, c = pool.symbols("a b c")
    made = {
        "neg": lambda: -a, "not": lambda: ~a, "add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
        "div": lambda: a / b, "pow": lambda: a**b, "and": lambda: a & b, "or": lambda: a | b, "lt": lambda: a < b,
        "le": lambda: a <= b, "gt": lambda: a > b, "ge": lambda: a >= b, "select": lambda: ak.where(a, b, c),
        "fma": lambda: a**5,
    }
    arity = 1 if op == "fma" else OPS[op].arity
    syms = [a, b, c][:arity]
    expr = made[op]() if op in made else getattr(ak, op)(*syms)
    return expr, syms


def compiled(expr, vars, tier, dtype):
    return ak.compile_expr(expr, vars, ak.CompileConfig(tier=tier, dtype=dtype), cache=False)


def check_op(op: str, columns):
    pool = ak.ExprPool()
    expr, vars = build(op, pool)
    args = [np.asarray(c, F32) for c in columns[: len(vars)]]
    with np.errstate(all="ignore"):
        want = ak.numpy_eval(compiled(expr, vars, "interpreter", "float64"), *[a.astype(np.float64) for a in args])
        want32 = want.astype(F32)
    bound = FMA_BOUND if op == "fma" else BOUND[OPS[op].op_class]
    results = {}
    for tier in TIERS:
        f = compiled(expr, vars, tier, "float32")
        got = ak.numpy_eval(f, *args)
        assert f.tier == tier and got.dtype == F32
        err = ulps32(got, want32)
        worst = int(np.argmax(err))
        assert err[worst] <= bound, (
            f"{tier} {op}{tuple(float(a[worst]) for a in args)}: {got[worst]!r}, float64 rounded {want32[worst]!r} "
            f"({err[worst]} ulp > {bound})")
        # The scalar entry (libm's float routines) within the same bound.
        for k in range(0, len(got), max(1, len(got) // 7)):
            s = np.float32(f(*[float(a[k]) for a in args]))
            assert ulps32(np.array([s]), want32[k:k + 1])[0] <= bound, f"{tier} scalar {op} at point {k}"
        results[tier] = got
    for tier, got in results.items():
        assert got.tobytes() == results["interpreter"].tobytes(), f"{tier} differs from the interpreter on {op}"


@pytest.mark.parametrize("op", [op.name for op in TABLE])
def test_every_op_on_edge_values(op):
    arity = OPS[op].arity
    grids = np.meshgrid(*[EDGES] * arity, indexing="ij")
    check_op(op, [g.ravel() for g in grids] + [np.ones(1)] * (3 - arity))


@pytest.mark.parametrize("op", [op.name for op in TABLE])
def test_every_op_on_random_floats(op):
    @settings(max_examples=15, deadline=None)
    @given(st.lists(st.tuples(FLOATS32, FLOATS32, FLOATS32), min_size=1, max_size=40))
    def run(points):
        cols = np.array(points, dtype=F32).T
        # Spread values into each function's interesting range too.
        check_op(op, [np.concatenate([c, np.tanh(c) * 3, c * 1e-30]) for c in cols])

    run()


def test_float32_inputs_give_float32_results_computed_in_float32():
    x, y = ak.ExprPool().symbols("x y")
    f = ak.compile_expr(x * 0.1 + y, [x, y], cache=False)
    a = np.linspace(-1, 1, 101, dtype=F32)
    r = ak.numpy_eval(f, a, a)
    assert r.dtype == F32
    # The constant is rounded to float32 once; the arithmetic is float32's.
    np.testing.assert_array_equal(r, a * F32(0.1) + a)
    assert f.dtype == "float64" and f.follows_input_dtype
    variant = f._float32_variant
    assert variant is not None and variant.dtype == "float32"
    ak.numpy_eval(f, a, a)
    assert f._float32_variant is variant, "the float32 variant is made once"


@pytest.mark.parametrize(
    "inputs, dtype",
    [
        ((np.ones(3, F32), np.ones(3, F32)), F32),
        ((np.ones(3, F32), 2.0), F32),  # Python numbers take the arrays' type
        ((np.ones(3, F32), 2), F32),
        ((np.ones(3, np.float16), np.ones(3, F32)), F32),
        ((np.ones(3, F32), np.ones(3)), np.float64),
        ((np.ones(3, F32), np.float64(2.0)), np.float64),  # a NumPy float64 scalar is typed
        ((np.ones(3, F32), np.arange(3)), np.float64),  # int64 with float32: float64, as NumPy
        ((np.arange(3), np.arange(3)), np.float64),
        ((1.0, 2.0), np.float64),
        ((np.ones(3, F32)[::2], np.ones(2, F32)), F32),  # strided views are read in place
    ],
)
def test_promotion_follows_numpy(inputs, dtype):
    x, y = ak.ExprPool().symbols("x y")
    f = ak.compile_expr(x * y + 1, [x, y])
    got = ak.numpy_eval(f, *inputs)
    assert got.dtype == dtype
    # NumPy's promotion, with integer arrays read as float64 (alkahest computes in floats).
    floats = [i.astype(np.float64) if isinstance(i, np.ndarray) and i.dtype.kind in "iu" else i for i in inputs]
    want = np.multiply(*floats) + 1
    assert np.asarray(want).dtype == dtype  # NumPy agrees
    np.testing.assert_array_equal(got, want)


def test_dtype_config_fixes_the_type():
    x, y = ak.ExprPool().symbols("x y")
    a32, a64 = np.linspace(0, 1, 5, dtype=F32), np.linspace(0, 1, 5)
    f32 = ak.compile_expr(ak.sin(x) + y, [x, y], ak.CompileConfig(dtype="float32"))
    assert ak.numpy_eval(f32, a64, a64).dtype == F32  # converted, computed in float32
    np.testing.assert_array_equal(ak.numpy_eval(f32, a64, a64), ak.numpy_eval(f32, a32, a32))
    # Scalar calls compute in float32 too, and return Python floats.
    s = f32(0.3, 0.25)
    assert isinstance(s, float) and s == float(F32(s)), "a float32 result, widened"
    assert ulps32(np.array([s]), np.array([np.sin(0.3) + 0.25]))[0] <= 4
    f64 = ak.compile_expr(ak.sin(x) + y, [x, y], ak.CompileConfig(dtype="float64"))
    assert ak.numpy_eval(f64, a32, a32).dtype == np.float64
    assert not f64.follows_input_dtype
    assert ak.CompileConfig(dtype=np.float32) == ak.CompileConfig(dtype="float32")
    with pytest.raises(ak.ConfigError, match="float32"):
        ak.CompileConfig(dtype="int8")


def test_out_of_either_type_is_honoured_or_refused_clearly():
    x, y = ak.ExprPool().symbols("x y")
    f = ak.compile_expr([x + y, x * y], [x, y])
    a = np.arange(4, dtype=F32)
    out = (np.empty(4, F32), np.empty(4, F32))
    got = ak.numpy_eval(f, a, a, out=out)
    assert got[0] is out[0] and np.array_equal(out[1], a * a)
    with pytest.raises(ak.DTypeError, match=r"out\[0\] has dtype float64, but this call computes in float32"):
        ak.numpy_eval(f, a, a, out=(np.empty(4), np.empty(4)))
    with pytest.raises(ak.DTypeError, match=r"out\[1\] has dtype float32, but this call computes in float64"):
        ak.numpy_eval(f, a.astype(float), a, out=(np.empty(4), np.empty(4, F32)))


def test_float32_outputs_as_arrays_and_shapes():
    x, y = ak.ExprPool().symbols("x y")
    f = ak.compile_expr([[x, y], [x * y, x - y]], [x, y])
    a = np.arange(6, dtype=F32).reshape(2, 3)
    r = ak.numpy_eval(f, a, 1.5)
    assert r.dtype == F32 and r.shape == (2, 2, 2, 3)
    np.testing.assert_array_equal(r[1, 0], a * F32(1.5))


@pytest.mark.parametrize("tier", TIERS)
def test_large_and_strided_float32_calls_match_contiguous_ones(tier):
    x, y = ak.ExprPool().symbols("x y")
    f = compiled([ak.exp(-x * x) * ak.cos(y), ak.where(x > y, ak.log1p(ak.abs(x)), y)], [x, y], tier, "float32")
    rng = np.random.default_rng(3)
    big = rng.standard_normal(2 * 100_003).astype(F32)
    strided, dense = big[::2], big[::2].copy()
    r1 = ak.numpy_eval(f, strided, F32(0.25) * dense)
    r2 = ak.numpy_eval_par(f, dense, F32(0.25) * dense, threads=2)
    assert all(u.tobytes() == v.tobytes() for u, v in zip(r1, r2))


def test_the_cost_model_prices_float32_bulk_work_by_the_calibrated_ratios():
    from alkahest.costmodel import CostModel, Features

    x, y = ak.ExprPool().symbols("x y")
    model = CostModel.load()
    feats = Features.of(ak.lower(ak.sin(x) * y + 1, [x, y]))
    for tier in TIERS:
        wide, narrow = model.predict(feats, tier), model.predict(feats, tier, dtype="float32")
        small, large = model.float32_ratios(tier)
        assert 0 < small < 1 and 0 < large < 1, "the shipped calibration measured float32 cheaper"
        assert narrow.point_s == pytest.approx(small * wide.point_s)
        assert narrow.large_point_s == pytest.approx(large * wide.large_point_s)
        assert (narrow.compile_s, narrow.call_s) == (wide.compile_s, wide.call_s)
    # A calibration without float32 measurements prices both types alike.
    old = CostModel({k: v for k, v in model.calibration.items() if k != "float32"})
    assert old.predict(feats, "llvm", dtype="float32").point_s == old.predict(feats, "llvm").point_s


def test_the_float32_variant_tiers_up_on_its_own_work_and_explain_shows_it():
    x, y = ak.ExprPool().symbols("x y")
    # Arithmetic-heavy, so that compiling clearly pays at this size on any calibration (on
    # transcendental calls the block interpreter is nearly as fast: it calls libmvec too).
    poly = sum(((k + 1) * 0.1) * x**k * y ** (k % 3) for k in range(1, 12)) + ak.sin(x)
    f = ak.compile_expr(poly, [x, y], cache=False)
    a = np.linspace(-1, 1, 1 << 21, dtype=F32)
    ak.numpy_eval(f, a, a)  # a bulk call predicted to pay for a compile does it
    variant = f._float32_variant
    assert variant.adaptive and variant.tier != "interpreter", variant
    assert f.tier == "interpreter", "the float64 function has done no work"
    text = str(ak.explain(f))
    assert "float32 inputs run its float32 variant" in text and "in float32" in text, text


def test_float32_functions_pickle_as_float32():
    import pickle

    x, y = ak.ExprPool().symbols("x y")
    f = ak.compile_expr(ak.sin(x) * y, [x, y], ak.CompileConfig(dtype="float32", tier="cranelift"), cache=False)
    g = pickle.loads(pickle.dumps(f))
    assert g.dtype == "float32" and g.tier == "cranelift"
    low = ak._native.compile_interpreter(ak.lower(x * y, [x, y]), ["x", "y"], dtype="float32")
    h = pickle.loads(pickle.dumps(low))
    assert h.dtype == "float32" and not h.follows_input_dtype
    a = np.linspace(0, 1, 7)
    np.testing.assert_array_equal(ak.numpy_eval(h, a, a), ak.numpy_eval(low, a, a))
