"""Outputs given as an array (a NumPy array of expressions, or nested lists): calls
return arrays of that shape, on every tier, in bulk and through pickles and Dask."""

import pickle

import numpy as np
import pytest

import alkahest as ak
from alkahest import tiers

USABLE = [t.name for t in tiers.HOST if t.unavailable() is None]


@pytest.fixture
def model():
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    rows = [[x + y, x * y, ak.sin(x)], [y**5, ak.where(x < y, x, y), 1.0 * x]]
    return pool, x, y, rows


@pytest.mark.parametrize("tier", USABLE)
def test_nested_lists_give_arrays_of_their_shape(model, tier):
    pool, x, y, rows = model
    f = ak.compile_expr(rows, [x, y], ak.CompileConfig(tier=tier))
    flat = ak.compile_expr([e for r in rows for e in r], [x, y], ak.CompileConfig(tier=tier))
    assert f.output_shape == [2, 3] and flat.output_shape is None and f is not flat
    got = f(0.5, 2.0)
    assert isinstance(got, np.ndarray) and got.shape == (2, 3) and got.dtype == np.float64
    assert got.ravel().tolist() == list(flat(0.5, 2.0))
    xs = np.linspace(-1, 1, 2001)
    bulk = ak.numpy_eval(f, xs, 2.0)
    assert bulk.shape == (2, 3, 2001)
    for k, col in enumerate(ak.numpy_eval(flat, xs, 2.0)):
        assert bulk[k // 3, k % 3].tobytes() == col.tobytes()
    assert ak.numpy_eval_par(f, xs, 2.0).tobytes() == bulk.tobytes()


def test_out_takes_the_shaped_array_or_the_usual_forms(model):
    pool, x, y, rows = model
    f = ak.compile_expr(rows, [x, y])
    xs = np.linspace(0, 1, 101)
    want = ak.numpy_eval(f, xs, 3.0)
    whole = np.empty((2, 3, 101))
    assert ak.numpy_eval(f, xs, 3.0, out=whole) is whole and whole.tobytes() == want.tobytes()
    flat = np.empty((6, 101))
    ak.numpy_eval(f, xs, 3.0, out=flat)
    assert flat.tobytes() == want.tobytes()
    buf = np.empty((2, 3))
    assert f(0.25, 3.0, out=buf) is buf and buf.tobytes() == f(0.25, 3.0).tobytes()
    with pytest.raises(ak.ArityError, match="out must"):
        ak.numpy_eval(f, xs, 3.0, out=np.empty((3, 2, 100)))


def test_numpy_object_arrays_and_one_dimensional_outputs(model):
    pool, x, y, rows = model
    vec = ak.compile_expr(np.array([x, y, x + y], dtype=object), [x, y])
    assert vec(1.0, 2.0).tolist() == [1.0, 2.0, 3.0]
    assert ak.compile_expr(np.array(rows, dtype=object), [x, y]).output_shape == [2, 3]


def test_ragged_outputs_are_refused(model):
    pool, x, y, rows = model
    with pytest.raises(ak.ShapeError, match="rectangular"):
        ak.compile_expr([[x], [x, y]], [x, y])
    with pytest.raises(ak.ShapeError, match="mix"):
        ak.compile_expr([[x, [y]], [x, y]], [x, y])


def test_the_shape_travels_with_pickles_and_dask(model):
    pool, x, y, rows = model
    f = ak.compile_expr(rows, [x, y])
    data = pickle.dumps(f)
    ak.persist.clear()
    g = pickle.loads(data)
    assert g is not f and g.output_shape == [2, 3] and g(0.5, 2.0).tobytes() == f(0.5, 2.0).tobytes()
    da = pytest.importorskip("dask.array")
    xs = np.linspace(0, 1, 1000)
    lazy = ak.numpy_eval(f, da.from_array(xs, chunks=300), 2.0)
    assert lazy.shape == (2, 3, 1000)
    assert lazy.compute(scheduler="sync").tobytes() == ak.numpy_eval(f, xs, 2.0).tobytes()


@pytest.mark.parametrize("tier", USABLE)
def test_many_large_outputs_are_rows_of_one_array(tier):
    """Fresh outputs of 4 MiB or more together come as rows of one block (huge pages, no
    page-by-page faults per call); smaller ones as separate arrays. Either way each is its
    own output, contiguous, with the right values."""
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    exprs = [x * (k + 1) + y for k in range(8)]
    f = ak.compile_expr(exprs, [x, y], ak.CompileConfig(tier=tier))
    for n, one_block in ((1000, False), (70_000, True)):  # 8 x 8 x 70,000 bytes = 4.3 MiB
        xs, ys = np.linspace(0, 1, n), np.linspace(2, 3, n)
        got = ak.numpy_eval(f, xs, ys)
        assert isinstance(got, tuple) and len(got) == 8
        assert (got[0].base is not None and got[0].base is got[7].base) == one_block
        for k, g in enumerate(got):
            assert g.shape == (n,) and g.flags.c_contiguous
            np.testing.assert_array_equal(g, xs * (k + 1) + ys)
        got[0][:] = -1.0  # rows do not overlap
        np.testing.assert_array_equal(got[1], xs * 2 + ys)
