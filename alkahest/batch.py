"""``numpy_eval`` and ``numpy_eval_par``: a compiled function over whole arrays.

The arrays are broadcast like NumPy's (views with stride 0, never copies), strided
inputs are read in place, and the work runs in one fused pass in Rust with the GIL
released. Anything NumPy accepts works as input; objects exposing DLPack (PyTorch CPU
tensors, JAX arrays) are read without a copy.

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


def _as_arrays(arrays: Sequence[Any]) -> Tuple[np.ndarray, ...]:
    """The inputs as aligned float64 arrays (the Rust call path reads those and Python
    floats in place, and comes here for anything else)."""
    return tuple(_as_float64(a, i) for i, a in enumerate(arrays))


def _slow_path(f: Any, arrays: Sequence[Any], out: Any, threads: int) -> Tuple[Optional[Tuple[np.ndarray, ...]], Any]:
    """What the Rust call path does with inputs it cannot read in place:
    ``(converted arrays, None)`` to evaluate, or ``(None, result)`` for Dask inputs,
    whose result is a lazy Dask array (a tuple of them for several outputs). ``threads``:
    1 for ``numpy_eval``, 0 for ``numpy_eval_par``'s default, else what it was given."""
    if any(is_dask(a) for a in arrays):
        from .interop.dask import evaluate_lazily

        return None, evaluate_lazily(f, arrays, out, threads)
    return _as_arrays(arrays), None


def is_dask(a: Any) -> bool:
    """Whether ``a`` is a Dask collection (checked without importing Dask)."""
    return hasattr(type(a), "__dask_graph__")


# The call path itself is in Rust (crates/alkahest-python/src/bulk.rs): shapes, ``out``
# and overlap are checked there, and the kernel runs with the GIL released.
numpy_eval = _native.numpy_eval
numpy_eval_par = _native.numpy_eval_par
