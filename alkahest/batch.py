"""``numpy_eval`` and ``numpy_eval_par``: a compiled function over whole arrays.

The arrays are broadcast like NumPy's (views with stride 0, never copies), strided
inputs are read in place, and the work runs in one fused pass in Rust with the GIL
released. Anything NumPy accepts works as input; objects exposing DLPack (PyTorch CPU
tensors, JAX arrays) are read without a copy.
"""

from __future__ import annotations

import numbers
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import CompiledFn
from .errors import ArityError, DTypeError, ShapeError

ArrayResult = Union[np.ndarray, Tuple[np.ndarray, ...]]
_F64 = np.dtype(np.float64)
_NONE = object()


def _to_array(a: Any, i: int) -> np.ndarray:
    if hasattr(a, "__dlpack__"):
        try:
            return np.from_dlpack(a)  # PyTorch CPU tensors, JAX arrays: shared, not copied
        except (TypeError, BufferError, RuntimeError, ValueError):
            pass  # not on the CPU, or a layout DLPack cannot share: go through asarray
    try:
        return np.asarray(a)
    except Exception as e:  # noqa: BLE001 - report any conversion failure the same way
        raise DTypeError(f"input {i} ({type(a).__name__}) cannot be converted to an array: {e}") from e


def _cast(arr: np.ndarray, i: int) -> np.ndarray:
    if arr.dtype.kind not in "biufO":
        raise DTypeError(f"input {i} has dtype {arr.dtype}, which cannot be cast to float64; pass real numbers")
    if arr.dtype.kind == "O":
        bad = next((v for v in arr.flat if not isinstance(v, numbers.Real)), _NONE)
        if bad is not _NONE:
            raise DTypeError(f"input {i} holds {bad!r}, which is not a real number; pass real numbers")
    try:
        return arr.astype(_F64)
    except (TypeError, ValueError) as e:
        raise DTypeError(f"input {i} (dtype {arr.dtype}) cannot be cast to float64: {e}") from e


def _as_float64(a: Any, i: int) -> np.ndarray:
    arr = a if isinstance(a, np.ndarray) else _to_array(a, i)
    if arr.dtype != _F64:
        arr = _cast(arr, i)
    if not arr.flags.aligned:
        arr = arr.copy()  # the kernel reads whole, aligned doubles in place
    return arr


def _outputs(f: CompiledFn, shape: Tuple[int, ...], out: Any) -> Sequence[np.ndarray]:
    n = f.n_outputs
    if out is None:
        return [np.empty(shape) for _ in range(n)]
    if isinstance(out, np.ndarray) and n > 1 and out.shape == (n,) + shape:
        outs: Optional[List[Any]] = list(out)  # one array holding every output: its rows
    else:
        outs = [out] if isinstance(out, np.ndarray) else list(out) if isinstance(out, (list, tuple)) else None
    if outs is None or len(outs) != n:
        raise ArityError(f"out must be {'an array' if n == 1 else f'a tuple of {n} arrays or one array of shape (n_outputs, ...)'} "
                         f"(the function has {n} output{'s' * (n > 1)})")
    for j, o in enumerate(outs):
        if not isinstance(o, np.ndarray):
            raise DTypeError(f"out[{j}] must be a NumPy array, got {type(o).__name__}")
        if o.dtype != _F64:
            raise DTypeError(f"out[{j}] has dtype {o.dtype}; it must be float64")
        if o.shape != shape:
            raise ShapeError(f"out[{j}] has shape {o.shape}, but the inputs broadcast to {shape}")
        if not (o.flags.c_contiguous and o.flags.writeable):
            raise ShapeError(f"out[{j}] must be C-contiguous and writeable")
    return outs


def _extent(a: np.ndarray) -> Optional[Tuple[int, int]]:
    """The byte range ``a`` may touch (None when empty)."""
    lo = hi = a.__array_interface__["data"][0]
    for n, stride in zip(a.shape, a.strides):
        if n == 0:
            return None
        if stride > 0:
            hi += (n - 1) * stride
        else:
            lo += (n - 1) * stride
    return lo, hi + a.itemsize


def _overlap(inputs: Sequence[np.ndarray], outs: Sequence[np.ndarray]) -> bool:
    """Whether an output's memory may overlap an input's or another output's (byte
    ranges, as np.may_share_memory; one sort, so thousands of outputs cost little)."""
    spans = [(e[0], e[1], True) for e in map(_extent, outs) if e] + [(e[0], e[1], False) for e in map(_extent, inputs) if e]
    spans.sort()
    reach_out = reach_in = -1  # furthest end so far of an output's range, of an input's
    for lo, hi, is_out in spans:
        if lo < reach_out or (is_out and lo < reach_in):
            return True
        if is_out:
            reach_out = max(reach_out, hi)
        else:
            reach_in = max(reach_in, hi)
    return False


def _run(f: CompiledFn, arrays: Sequence[Any], out: Any, threads: int) -> ArrayResult:
    if not isinstance(f, CompiledFn):
        raise TypeError(f"expected a CompiledFn (from compile_expr), got {type(f).__name__}")
    if len(arrays) != f.n_inputs:
        raise ArityError(f"{f!r} takes {f.n_inputs} input arrays, got {len(arrays)}")
    inputs = [_as_float64(a, i) for i, a in enumerate(arrays)]
    try:
        shape = np.broadcast_shapes(*(a.shape for a in inputs))
    except ValueError:
        shapes = ", ".join(str(a.shape) for a in inputs)
        raise ShapeError(f"input shapes {shapes} do not broadcast together (NumPy rules)") from None
    outs = _outputs(f, shape, out)
    if out is not None and _overlap(inputs, outs):
        # The kernel reads inputs while it writes outputs, block by block: an output
        # sharing memory with an input is computed into fresh arrays first (as NumPy
        # buffers overlapping operands).
        fresh = [np.empty(shape) for _ in outs]
        f._bulk(inputs, fresh, threads)
        for o, r in zip(outs, fresh):
            o[...] = r
    else:
        f._bulk(inputs, list(outs), threads)
    if out is None and shape == ():
        results = [o[()] for o in outs]  # like a ufunc on scalars: numpy float64, not 0-d arrays
    elif isinstance(out, np.ndarray) and f.n_outputs > 1:
        return out  # one array holding every output
    else:
        results = list(outs)
    return results[0] if f.n_outputs == 1 else tuple(results)


def numpy_eval(f: CompiledFn, *arrays: Any, out: Any = None) -> ArrayResult:
    """Evaluates ``f`` elementwise over arrays (one per input, broadcast together) on
    the calling thread. Returns an array, or a tuple of arrays for several outputs;
    ``out`` (an array or tuple of C-contiguous float64 arrays, or for several outputs
    one array of shape ``(n_outputs, *shape)``, then returned) receives the results.
    ``out`` may share memory with the inputs (the result is then computed first).

    >>> f = compile_expr(x * y + 1, [x, y])  # doctest: +SKIP
    >>> numpy_eval(f, np.arange(3.0), 2.0)  # doctest: +SKIP
    array([1., 3., 5.])
    """
    return _run(f, arrays, out, 1)


def numpy_eval_par(f: CompiledFn, *arrays: Any, out: Any = None, threads: Optional[int] = None) -> ArrayResult:
    """Like :func:`numpy_eval`, split over ``threads`` threads (default: the
    ``ALKAHEST_NUM_THREADS`` environment variable, else every core). Results are
    identical to ``numpy_eval``'s.

    >>> numpy_eval_par(f, x_big, y_big, threads=4)  # doctest: +SKIP
    """
    if threads is None:
        threads = _native.default_threads()
    elif not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    return _run(f, arrays, out, threads)
