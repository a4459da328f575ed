"""numpy_eval / numpy_eval_par: broadcasting, strides, out, conversion, errors."""

import numpy as np
import pytest

import alkahest as ak
from alkahest import errors


@pytest.fixture
def f(xy):
    x, y = xy
    return ak.compile_expr(x * 2 - y, [x, y])


def test_matches_numpy(f):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=1000), rng.normal(size=1000)
    np.testing.assert_array_equal(ak.numpy_eval(f, a, b), a * 2 - b)


def test_broadcasting_like_numpy(f):
    col = np.arange(3.0).reshape(3, 1)
    row = np.arange(4.0)
    np.testing.assert_array_equal(ak.numpy_eval(f, col, row), col * 2 - row)
    np.testing.assert_array_equal(ak.numpy_eval(f, row, 1.5), row * 2 - 1.5)
    r = ak.numpy_eval(f, 1.0, 2.0)
    assert r == 0.0 and isinstance(r, np.float64)


def test_strided_and_transposed_inputs_read_in_place(f):
    base = np.arange(24.0).reshape(4, 6)
    a = base[:, ::2]  # strided
    b = base.T[::2, :]  # transposed, strided: shape (3, 4)
    np.testing.assert_array_equal(ak.numpy_eval(f, a.T, b), a.T * 2 - b)
    rev = np.arange(10.0)[::-1]
    np.testing.assert_array_equal(ak.numpy_eval(f, rev, 0.0), rev * 2)


def test_ints_and_bools_are_cast(f):
    np.testing.assert_array_equal(ak.numpy_eval(f, [1, 2, 3], np.array([True, False, True])), [1.0, 4.0, 5.0])
    np.testing.assert_array_equal(ak.numpy_eval(f, np.arange(3, dtype=np.float32), 0), [0.0, 2.0, 4.0])


def test_unaligned_and_big_endian_inputs(f):
    raw = np.zeros(8 * 5 + 1, dtype=np.uint8)
    un = raw[1:].view(np.float64)
    un[:] = [1, 2, 3, 4, 5]
    assert un.ctypes.data % 8 != 0
    np.testing.assert_array_equal(ak.numpy_eval(f, un, 0.0), un * 2)
    be = np.arange(4.0).astype(">f8")
    np.testing.assert_array_equal(ak.numpy_eval(f, be, 0.0), np.arange(4.0) * 2)


def test_several_outputs_and_out(xy):
    x, y = xy
    g = ak.compile_expr([x + y, x * y], [x, y])
    a, b = np.arange(5.0), np.full(5, 2.0)
    s, p = ak.numpy_eval(g, a, b)
    np.testing.assert_array_equal(s, a + b)
    np.testing.assert_array_equal(p, a * b)
    o1, o2 = np.empty(5), np.empty(5)
    r = ak.numpy_eval(g, a, b, out=(o1, o2))
    assert r[0] is o1 and r[1] is o2
    np.testing.assert_array_equal(o2, a * b)


def test_out_may_alias_an_input(f):
    a = np.arange(5000.0)
    expect = a * 2 - 1
    ak.numpy_eval(f, a, 1.0, out=a)
    np.testing.assert_array_equal(a, expect)


def test_bad_out(f):
    a = np.arange(4.0)
    with pytest.raises(errors.ShapeError, match="shape"):
        ak.numpy_eval(f, a, a, out=np.empty(3))
    with pytest.raises(errors.DTypeError, match="float64"):
        ak.numpy_eval(f, a, a, out=np.empty(4, dtype=np.float32))
    with pytest.raises(errors.ShapeError, match="C-contiguous"):
        ak.numpy_eval(f, a, a, out=np.empty(8)[::2])
    ro = np.empty(4)
    ro.flags.writeable = False
    with pytest.raises(errors.ShapeError, match="writeable"):
        ak.numpy_eval(f, a, a, out=ro)
    with pytest.raises(errors.ArityError):
        ak.numpy_eval(f, a, a, out=(np.empty(4), np.empty(4)))


def test_shape_mismatch(f):
    with pytest.raises(errors.ShapeError, match=r"\(3,\), \(4,\) do not broadcast"):
        ak.numpy_eval(f, np.zeros(3), np.zeros(4))


def test_wrong_number_of_arrays(f):
    with pytest.raises(errors.ArityError, match="takes 2 input arrays, got 1"):
        ak.numpy_eval(f, np.zeros(3))


@pytest.mark.parametrize("bad", [np.array(["a", "b"]), np.array([1 + 2j]), [1.0, None], [object()]])
def test_uncastable_inputs(f, bad):
    with pytest.raises(errors.DTypeError):
        ak.numpy_eval(f, bad, 1.0)


def test_not_a_compiled_function():
    with pytest.raises(TypeError, match="CompiledFn"):
        ak.numpy_eval(lambda x: x, np.zeros(3))


def test_empty_arrays(f):
    r = ak.numpy_eval(f, np.zeros((0, 3)), 1.0)
    assert r.shape == (0, 3)


class DLPackOnly:
    """Exposes a NumPy buffer through DLPack only, like a PyTorch CPU tensor or JAX array."""

    def __init__(self, arr):
        self._arr = arr

    def __dlpack__(self, **kwargs):
        return self._arr.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._arr.__dlpack_device__()


def test_dlpack_inputs_are_read_without_copy(f, monkeypatch):
    from alkahest import batch

    base = np.arange(6.0)
    seen = []
    real = batch._as_dtype

    def spy(a, i, dtype):
        arr = real(a, i, dtype)
        seen.append(arr)
        return arr

    monkeypatch.setattr(batch, "_as_dtype", spy)
    r = ak.numpy_eval(f, DLPackOnly(base), 0.0)
    np.testing.assert_array_equal(r, base * 2)
    assert np.shares_memory(seen[0], base)


def test_par_identical_to_serial_with_transcendentals(xy):
    x, y = xy
    g = ak.compile_expr([ak.sin(x) * ak.cos(y) + ak.exp(-x * x), ak.where(x > 0, ak.sqrt(ak.abs(x)), y)], [x, y])
    rng = np.random.default_rng(2)
    a, b = rng.uniform(-5, 5, 300_001), rng.uniform(-5, 5, 300_001)
    s = ak.numpy_eval(g, a, b)
    for threads in (1, 2, 3, 8):
        p = ak.numpy_eval_par(g, a, b, threads=threads)
        for u, v in zip(s, p):
            assert u.tobytes() == v.tobytes()
    # 2-D with a broadcast column, split over rows.
    a2 = a[:300_000].reshape(1000, 300)
    col = b[:1000].reshape(1000, 1)
    s2 = ak.numpy_eval(g, a2, col)
    p2 = ak.numpy_eval_par(g, a2, col, threads=2)
    assert s2[0].tobytes() == p2[0].tobytes()


def test_par_threads_argument(f):
    with pytest.raises(ValueError, match="threads"):
        ak.numpy_eval_par(f, 1.0, 1.0, threads=0)
    assert ak._native.default_threads() >= 1


def test_threads_env_var(monkeypatch):
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", "import alkahest; print(alkahest._native.default_threads())"],
        env={**__import__("os").environ, "ALKAHEST_NUM_THREADS": "3"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "3"


def test_broadcast_and_array_inputs_give_the_same_bits(xy):
    x, y = xy
    f = ak.compile_expr(ak.cos(y) * x + ak.exp(y), [x, y])
    a = np.linspace(-2, 2, 7)
    r1 = ak.numpy_eval(f, a, 1.0)
    r2 = ak.numpy_eval(f, a, np.full(7, 1.0))
    r3 = np.array([ak.numpy_eval(f, v, 1.0) for v in a])
    assert r1.tobytes() == r2.tobytes() == r3.tobytes()


def test_jax_arrays_are_read_through_dlpack_without_copy(f, monkeypatch):
    jax = pytest.importorskip("jax", reason="JAX is a test dependency; not installable on this platform")
    from alkahest import batch

    jax.config.update("jax_enable_x64", True)
    arr = jax.numpy.arange(6.0)
    assert arr.dtype == np.float64
    seen = []
    real = batch._as_dtype
    monkeypatch.setattr(batch, "_as_dtype", lambda a, i, dtype: seen.append(real(a, i, dtype)) or seen[-1])
    np.testing.assert_array_equal(ak.numpy_eval(f, arr, 1.0), np.arange(6.0) * 2 - 1)
    assert seen[0].ctypes.data == arr.unsafe_buffer_pointer()  # the JAX buffer itself
    # float32 JAX arrays are converted (a copy is unavoidable) and still correct.
    np.testing.assert_array_equal(ak.numpy_eval(f, jax.numpy.arange(3, dtype=jax.numpy.float32), 0.0), [0, 2, 4])


@pytest.mark.parametrize("tier", ak.AVAILABLE_TIERS)
def test_many_large_outputs_are_streamed_with_the_same_bits(tier):
    """Results of 40 outputs over 10^5 points are written with non-temporal stores from a
    block buffer (the runner's streaming path): the same bits as small calls give."""
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    exprs = [ak.sin(x * (k + 1)) + y / (k + 2) for k in range(40)]
    f = ak.compile_expr(exprs, [x, y], ak.CompileConfig(tier=tier, cache_dir=False), cache=False)
    n = 100_003
    xs, ys = np.linspace(-3, 3, n), np.cos(np.arange(n))
    big = np.empty((40, n))
    assert ak.numpy_eval(f, xs, ys, out=big) is big
    pieces = [np.array(ak.numpy_eval(f, xs[i:i + 1000], ys[i:i + 1000])) for i in range(0, n, 1000)]
    assert np.concatenate(pieces, axis=1).tobytes() == big.tobytes()
    assert np.array(ak.numpy_eval_par(f, xs, ys, threads=2)).tobytes() == big.tobytes()


@pytest.mark.parametrize("tier", [t for t in ak.KNOWN_TIERS if t in ak.AVAILABLE_TIERS])
@pytest.mark.parametrize("par", [False, True])
def test_out_overlapping_the_inputs_gives_numpys_answer(tier, par):
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    f = ak.compile_expr(x * 2.0 + ak.sin(y), [x, y], ak.CompileConfig(tier=tier))
    g = ak.compile_expr([x + 1.0, x * y], [x, y], ak.CompileConfig(tier=tier))
    run = ak.numpy_eval_par if par else ak.numpy_eval
    n = 100_001
    buf = np.arange(n, dtype=np.float64)
    want = ak.numpy_eval(f, buf[:-1].copy(), 0.5)
    run(f, buf[:-1], 0.5, out=buf[1:])  # shifted by one element: every block reads what it writes
    assert buf[1:].tobytes() == want.tobytes() and buf[0] == 0.0
    buf = np.arange(n, dtype=np.float64)
    want = ak.numpy_eval(f, buf[::-1].copy(), buf.copy())
    run(f, buf[::-1], buf, out=buf)  # reversed: the output's last block is the input's first
    assert buf.tobytes() == want.tobytes()
    xs = np.linspace(0, 1, n)
    wa, wb = ak.numpy_eval(g, xs, 3.0)
    other = np.empty(n)
    run(g, xs, 3.0, out=(xs, other))  # the first output is the input itself, the second reads it
    assert xs.tobytes() == wa.tobytes() and other.tobytes() == wb.tobytes()
