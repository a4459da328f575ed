"""Dask arrays through alkahest: lazily, block by block, on the threaded scheduler and on
a real ``dask.distributed`` cluster of two worker processes on loopback (started and
closed by the test)."""

import numpy as np
import pytest

import alkahest as ak

da = pytest.importorskip("dask.array", reason="Dask is an optional extra (alkahest[dask])")


@pytest.fixture(scope="module")
def functions():
    pool = ak.ExprPool()
    x, y, z = pool.symbols("x y z")
    one = ak.compile_expr(ak.sin(x) * y + z, [x, y, z])
    two = ak.compile_expr([ak.exp(-x * y) * ak.cos(z * x), ak.where(x < y, x * z, ak.sqrt(x + 1.0))], [x, y, z])
    return one, two


def test_results_are_lazy_dask_arrays_with_the_right_meta(functions):
    one, two = functions
    dx = da.linspace(0.0, 3.0, 1000, chunks=300)
    r = ak.numpy_eval(one, dx, 2.0, 0.5)
    assert isinstance(r, da.Array) and r.dtype == np.float64 and type(r._meta) is np.ndarray
    assert r.chunks == dx.chunks
    outs = two(dx, dx[::-1], 1.5)
    assert isinstance(outs, tuple) and len(outs) == 2 and all(isinstance(o, da.Array) for o in outs)
    xs = dx.compute(scheduler="sync")
    want = ak.numpy_eval(two, xs, xs[::-1], 1.5)
    for got, w in zip(outs, want):
        assert got.compute(scheduler="threads").tobytes() == w.tobytes()


def test_float32_dask_inputs_give_float32_blocks_as_numpy_eval_does(functions):
    one, two = functions
    xs = np.linspace(0.0, 3.0, 1000, dtype=np.float32)
    dx = da.from_array(xs, chunks=300)
    r = ak.numpy_eval(one, dx, 2.0, np.float32(0.5) * dx)
    assert r.dtype == np.float32 and r._meta.dtype == np.float32
    assert r.compute(scheduler="sync").tobytes() == ak.numpy_eval(one, xs, 2.0, np.float32(0.5) * xs).tobytes()
    outs = two(dx, dx[::-1], 1.5)
    want = two(xs, xs[::-1], 1.5)
    for got, w in zip(outs, want):
        assert got.dtype == np.float32 and got.compute(scheduler="threads").tobytes() == w.tobytes()
    mixed = ak.numpy_eval(one, dx, da.from_array(xs.astype(np.float64), chunks=300), 1.0)
    assert mixed.dtype == np.float64 and mixed.compute(scheduler="sync").dtype == np.float64


def test_broadcasting_between_differently_chunked_inputs(functions):
    one, _ = functions
    x = np.arange(60.0).reshape(12, 5) * 0.1
    y = np.linspace(-1, 1, 5)
    dx, dy = da.from_array(x, chunks=(5, 2)), da.from_array(y, chunks=3)
    r = ak.numpy_eval_par(one, dx, dy, np.float64(0.25))
    assert r.shape == (12, 5)
    assert r.compute(scheduler="sync").tobytes() == ak.numpy_eval(one, x, y, 0.25).tobytes()
    # a column against a row: both broadcast
    col = da.from_array(x[:, :1], chunks=(4, 1))
    assert ak.numpy_eval(one, col, dy, 1.0).compute().tobytes() == ak.numpy_eval(one, x[:, :1], y, 1.0).tobytes()


def test_mistakes_are_refused(functions):
    one, _ = functions
    dx = da.ones(10, chunks=5)
    with pytest.raises(ak.DTypeError, match="dask.array.store"):
        ak.numpy_eval(one, dx, 1.0, 1.0, out=np.empty(10))
    with pytest.raises(ak.ArityError):
        ak.numpy_eval(one, dx, 1.0)
    with pytest.raises(ak.DTypeError, match="float64"):
        ak.numpy_eval(one, da.from_array(np.array(["a", "b"])), 1.0, 1.0)


def test_a_local_cluster_of_two_processes_gives_identical_bits(functions):
    distributed = pytest.importorskip("distributed", reason="dask.distributed is part of alkahest[dask]")
    _, two = functions
    n_rows = 4_000_000  # 2e7 elements in 10 chunks of 400,000 rows x 5
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        dx = (da.arange(n_rows * 5, chunks=n_rows * 5 // 10) * 1e-6).reshape(n_rows, 5)
        dy = da.from_array(np.linspace(0.5, 2.0, 5), chunks=2)  # broadcast across rows, chunked differently
        assert dx.npartitions == 10
        outs = ak.numpy_eval(two, dx, dy, 0.75)
        got = client.compute(list(outs), sync=True)
        per_worker = client.run(lambda: (len(ak.persist._functions), ak._native.default_threads()))
    x = (np.arange(n_rows * 5) * 1e-6).reshape(n_rows, 5)
    want = ak.numpy_eval(two, x, np.linspace(0.5, 2.0, 5), 0.75)
    for g, w in zip(got, want):
        assert g.tobytes() == w.tobytes()
    # each worker process compiled the function once, and uses the one thread it was given
    assert sorted(per_worker.values()) == [(1, 1), (1, 1)], per_worker


def test_threads_per_block_follow_the_call_and_the_worker_environment(functions, monkeypatch):
    from alkahest.interop.dask import block_threads

    one, _ = functions
    monkeypatch.delenv("ALKAHEST_NUM_THREADS", raising=False)
    assert block_threads(1) == 1 and block_threads(0) == 1 and block_threads(3) == 3
    monkeypatch.setenv("ALKAHEST_NUM_THREADS", "2")
    assert block_threads(0) == 2 and block_threads(1) == 1
    x = np.linspace(0, 1, 200_000)
    r = ak.numpy_eval_par(one, da.from_array(x, chunks=100_000), 1.0, 2.0, threads=2)
    assert r.compute(scheduler="sync").tobytes() == ak.numpy_eval(one, x, 1.0, 2.0).tobytes()
