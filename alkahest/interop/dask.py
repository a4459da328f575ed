"""Dask arrays in, Dask arrays out: ``numpy_eval``, ``numpy_eval_par`` and ``f(...)``
given a Dask array return a lazy Dask array (a tuple of them for several outputs).

The result is one ``blockwise`` task per output block, so it runs on any scheduler:
threads, processes, or a ``dask.distributed`` cluster. Inputs broadcast as in NumPy and
may be chunked differently (Dask aligns the chunks, as for its own element-wise
operations); NumPy arrays and numbers may be mixed in. Several outputs are computed in
one pass per block and handed out as views, so computing them together
(``dask.compute(*outs)``) evaluates each block once.

Each block runs on one thread of the worker that holds it: Dask parallelises over
blocks, so a worker with ``k`` threads runs ``k`` blocks at a time and alkahest adds no
threads of its own. ``numpy_eval_par`` splits each block over ``threads=`` threads if
given, else over ``ALKAHEST_NUM_THREADS`` as set where the block runs (for workers that
run fewer tasks than they have cores), else runs it on one thread too. The
function travels to workers as its pickle (tape, input names, config) and each worker
process compiles it once (:mod:`alkahest.persist`).

>>> import dask.array as da, numpy as np
>>> from alkahest import ExprPool, compile_expr, numpy_eval, sin
>>> x, y = ExprPool().symbols("x y")
>>> f = compile_expr(sin(x) * y, [x, y])
>>> xs = np.linspace(0.0, 1.0, 1000)
>>> r = numpy_eval(f, da.from_array(xs, chunks=250), 2.0)
>>> type(r).__name__, r.chunks
('Array', ((250, 250, 250, 250),))
>>> bool((r.compute() == numpy_eval(f, xs, 2.0)).all())
True
"""

from __future__ import annotations

import os
from typing import Any, List, Sequence, Tuple, Union

import numpy as np

from .. import _native
from ..batch import result_dtype
from ..errors import ArityError, DTypeError

_F64 = np.dtype(np.float64)


def block_threads(threads: int) -> int:
    """Threads for one block where it runs: ``threads`` if given (> 0), else
    ``ALKAHEST_NUM_THREADS`` if set, else 1 (the worker's scheduler parallelises)."""
    if threads > 0:
        return threads
    try:
        return max(1, int(os.environ.get("ALKAHEST_NUM_THREADS", "1")))
    except ValueError:
        return 1


def _run(fn: Any, blocks: Sequence[Any], threads: int, out: Any = None) -> Any:
    n = block_threads(threads)
    if n == 1:
        return _native.numpy_eval(fn, *blocks, out=out)
    return _native.numpy_eval_par(fn, *blocks, out=out, threads=n)


def alkahest_eval(*blocks: Any, fn: Any, threads: int) -> np.ndarray:
    """One output block of a one-output function."""
    return _run(fn, blocks, threads)


def alkahest_eval_outputs(*blocks: Any, fn: Any, threads: int, element: Any = _F64) -> np.ndarray:
    """One block of every output, stacked on a leading axis (one pass, one array of the
    type the call computes in)."""
    shape = np.broadcast_shapes(*(np.shape(b) for b in blocks))
    out = np.empty((fn.n_outputs,) + shape, dtype=element)
    _run(fn, blocks, threads, out)
    return out


def evaluate_lazily(fn: Any, arrays: Sequence[Any], out: Any = None, threads: int = 1) -> Union[Any, Tuple[Any, ...]]:
    """``numpy_eval(fn, *arrays)`` as a Dask array (a tuple of them for several outputs);
    ``threads`` as for :func:`block_threads` (1: ``numpy_eval``)."""
    import dask.array as da

    if out is not None:
        raise DTypeError(
            "out= cannot receive a lazy Dask result; compute into your array with "
            "dask.array.store(result, out), or pass NumPy inputs"
        )
    if len(arrays) != fn.n_inputs:
        raise ArityError(f"{fn!r} takes {fn.n_inputs} input arrays, got {len(arrays)}")
    args: List[Any] = []
    ndim = 0
    typed: List[np.ndarray] = []  # an empty array of each input's type, for the result's
    for a in arrays:
        if isinstance(a, (float, int)) and not isinstance(a, bool):
            args += [float(a), None]
            typed.append(np.asarray(float(a)))
            continue
        a = da.asarray(a)
        if a.dtype.kind not in "biuf":
            raise DTypeError(f"a Dask input has dtype {a.dtype}, which cannot be cast to float64; pass real numbers")
        ndim = max(ndim, a.ndim)
        args += [a, tuple(range(a.ndim))[::-1]]  # trailing axes line up, as NumPy broadcasts
        typed.append(np.empty(0, a.dtype))
    # Each block computes in the type numpy_eval would give the whole arrays.
    dtype = result_dtype(fn, typed, arrays)
    index = tuple(range(ndim))[::-1]
    n_out = fn.n_outputs
    if n_out == 1 and fn.output_shape is None:
        return da.blockwise(alkahest_eval, index, *args, fn=fn, threads=threads, dtype=dtype,
                            meta=np.empty((0,) * ndim, dtype), concatenate=True)
    stacked = da.blockwise(alkahest_eval_outputs, (ndim,) + index, *args, fn=fn, threads=threads, element=dtype, dtype=dtype,
                           new_axes={ndim: n_out}, meta=np.empty((0,) * (ndim + 1), dtype),
                           concatenate=True)
    if fn.output_shape is not None:  # outputs given as an array: one array, as numpy_eval gives
        return stacked.rechunk({0: n_out}).reshape(tuple(fn.output_shape) + stacked.shape[1:])
    return tuple(stacked[k] for k in range(n_out))
