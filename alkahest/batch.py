"""``numpy_eval`` and ``numpy_eval_par``: a compiled function over whole arrays.

The arrays are broadcast like NumPy's (views with stride 0, never copies), strided
inputs are read in place, and the work runs in one fused pass in Rust with the GIL
released. Anything NumPy accepts works as input; objects exposing DLPack (PyTorch CPU
tensors, JAX arrays) are read without a copy.

Several outputs come back as a tuple of arrays. Where they take 4 MiB or more together
they are the rows of one array (each C-contiguous; ``r[0].base`` is the whole): NumPy
gives one such array huge pages, where separate arrays of a few hundred KiB are faulted
in page by page on every call (twice the time of a 100-output function at 10^4 points).
A row keeps the whole alive; ``r[k].copy()`` one that is kept alone.

>>> import numpy as np
>>> from alkahest import ExprPool, compile_expr, numpy_eval
>>> pool = ExprPool(); x, y = pool.symbols("x y")
>>> f = compile_expr(x * y + 1, [x, y])
>>> numpy_eval(f, np.arange(3.0), 2.0)
array([1., 3., 5.])
"""

from __future__ import annotations

import numbers
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from .errors import DTypeError

ArrayResult = Union[np.ndarray, Tuple[np.ndarray, ...]]
_F64 = np.dtype(np.float64)
_F32 = np.dtype(np.float32)
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


def _cast(arr: np.ndarray, i: int, dtype: np.dtype) -> np.ndarray:
    if arr.dtype.kind not in "biufO":
        raise DTypeError(f"input {i} has dtype {arr.dtype}, which cannot be cast to {dtype}; pass real numbers")
    if arr.dtype.kind == "O":
        bad = next((v for v in arr.flat if not isinstance(v, numbers.Real)), _NONE)
        if bad is not _NONE:
            raise DTypeError(f"input {i} holds {bad!r}, which is not a real number; pass real numbers")
    try:
        return arr.astype(dtype)
    except (TypeError, ValueError) as e:
        raise DTypeError(f"input {i} (dtype {arr.dtype}) cannot be cast to {dtype}: {e}") from e


def _as_dtype(arr: np.ndarray, i: int, dtype: np.dtype) -> np.ndarray:
    if arr.dtype != dtype:
        arr = _cast(arr, i, dtype)
    if not arr.flags.aligned:
        arr = arr.copy()  # the kernel reads whole, aligned elements in place
    return arr


def _is_python_number(a: Any) -> bool:
    """Python's own numbers take the arrays' type (NumPy 2's rule); NumPy scalars do not."""
    return type(a) in (float, int, bool)


def result_dtype(f: Any, arrays: Sequence[np.ndarray], originals: Sequence[Any]) -> np.dtype:
    """The element type a bulk call of ``f`` computes in: ``f``'s own, or for a float64
    function following its inputs (``CompileConfig(dtype=None)``) float32 when NumPy's
    promotion of the array inputs (Python numbers aside) gives float32 or float16."""
    if f.dtype == "float32":
        return _F32
    if not f.follows_input_dtype:
        return _F64
    typed = [a.dtype for a, o in zip(arrays, originals) if not _is_python_number(o)]
    if typed and np.result_type(*typed) in (np.dtype(np.float16), _F32):
        return _F32
    return _F64


def _as_arrays(f: Any, arrays: Sequence[Any]) -> Tuple[np.ndarray, ...]:
    """The inputs as aligned arrays of the type the call computes in (the Rust call path
    reads those and Python floats in place, and comes here for anything else)."""
    raw = [a if isinstance(a, np.ndarray) else _to_array(a, i) for i, a in enumerate(arrays)]
    dtype = result_dtype(f, raw, arrays)
    return tuple(_as_dtype(a, i, dtype) for i, a in enumerate(raw))


def _slow_path(f: Any, arrays: Sequence[Any], out: Any, threads: int) -> Tuple[Optional[Tuple[np.ndarray, ...]], Any]:
    """What the Rust call path does with inputs it cannot read in place:
    ``(converted arrays, None)`` to evaluate, or ``(None, result)`` for Dask inputs,
    whose result is a lazy Dask array (a tuple of them for several outputs). ``threads``:
    1 for ``numpy_eval``, 0 for ``numpy_eval_par``'s default, else what it was given."""
    if any(is_dask(a) for a in arrays):
        from .interop.dask import evaluate_lazily

        return None, evaluate_lazily(f, arrays, out, threads)
    return _as_arrays(f, arrays), None


def is_dask(a: Any) -> bool:
    """Whether ``a`` is a Dask collection (checked without importing Dask)."""
    return hasattr(type(a), "__dask_graph__")


# The call path itself is in Rust (crates/alkahest-python/src/bulk.rs): shapes, ``out``
# and overlap are checked there, and the kernel runs with the GIL released.
numpy_eval = _native.numpy_eval
numpy_eval_par = _native.numpy_eval_par
