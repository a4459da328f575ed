"""Arrays on the GPU: alkahest's own :class:`DeviceArray` (results when no other GPU array
library is in play) and views of anyone else's device arrays through
``__cuda_array_interface__`` (CuPy, PyTorch, Numba) or DLPack on a CUDA device (JAX, ...).
"""

from __future__ import annotations

import ctypes
import math
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from ...errors import DTypeError, ShapeError

KDL_CPU, KDL_CUDA = 1, 2
_DL_FLOAT = 2


class DeviceView:
    """Pointer, shape and element strides (None: C-contiguous) of a device array."""

    def __init__(self, ptr: int, shape: Tuple[int, ...], strides: Optional[Tuple[int, ...]], owner: Any = None):
        self.ptr, self.shape, self.strides, self.owner = ptr, tuple(shape), strides, owner

    @property
    def contiguous(self) -> bool:
        if self.strides is None:
            return True
        expected, acc = [], 1
        for dim in reversed(self.shape):
            expected.append(acc)
            acc *= dim
        return all(s == e or d == 1 for s, e, d in zip(self.strides, reversed(expected), self.shape))

    def pointer_and_stride(self, shape: Tuple[int, ...], index: int) -> Tuple[int, int]:
        """(pointer, element stride) for the kernel, which takes one stride per input."""
        if math.prod(self.shape) == 1:
            return self.ptr, 0
        if self.shape == tuple(shape):
            if self.contiguous:
                return self.ptr, 1
            if len(shape) == 1 and self.strides is not None:
                return self.ptr, self.strides[0]
        raise ShapeError(
            f"device input {index} has shape {self.shape} and strides {self.strides}; the GPU kernel "
            f"reads each input as one strided vector: pass a C-contiguous array of shape {tuple(shape)}, "
            "a 1-D strided one, or a single value"
        )


def _check_dtype(found: np.dtype, want: np.dtype, what: str) -> None:
    if found != want:
        raise DTypeError(
            f"{what} has dtype {found}, but the function was compiled for {want} "
            f"(CudaConfig(dtype=...)); convert it on the device first"
        )


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", _DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_get_pointer.restype = ctypes.c_void_p
_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def dlpack_view(obj: Any) -> Tuple[int, DeviceView, np.dtype]:
    """(DLPack device type, view, dtype) of an object exporting ``__dlpack__``. The view
    keeps the capsule alive (its deleter runs when the view is dropped)."""
    capsule = obj.__dlpack__()
    tensor = _DLTensor.from_address(_get_pointer(capsule, b"dltensor"))  # DLManagedTensor starts with it
    if tensor.dtype.code != _DL_FLOAT or tensor.dtype.lanes != 1:
        raise DTypeError(f"a DLPack array of type code {tensor.dtype.code} is not a float array")
    dtype = np.dtype(f"float{tensor.dtype.bits}")
    shape = tuple(tensor.shape[k] for k in range(tensor.ndim))
    strides = tuple(tensor.strides[k] for k in range(tensor.ndim)) if tensor.strides else None
    ptr = (tensor.data or 0) + tensor.byte_offset
    return tensor.device.device_type, DeviceView(ptr, shape, strides, owner=capsule), dtype


def as_device_view(obj: Any, dtype: np.dtype) -> Optional[DeviceView]:
    """A view of ``obj`` if it is an array on a CUDA device, else None (a host array)."""
    cai = getattr(obj, "__cuda_array_interface__", None)
    if cai is not None:
        _check_dtype(np.dtype(cai["typestr"]), dtype, "a device input")
        itemsize = np.dtype(cai["typestr"]).itemsize
        strides = cai.get("strides")
        if strides is not None:
            if any(s % itemsize for s in strides):
                raise ShapeError("device arrays with strides that are not whole elements are not supported")
            strides = tuple(s // itemsize for s in strides)
        return DeviceView(int(cai["data"][0]), tuple(cai["shape"]), strides, owner=obj)
    if hasattr(obj, "__dlpack_device__") and hasattr(obj, "__dlpack__"):
        device_type, _ = obj.__dlpack_device__()
        if int(device_type) == KDL_CUDA:
            _, view, found = dlpack_view(obj)
            _check_dtype(found, dtype, "a device input")
            return view
    return None


class DeviceArray:
    """An array in GPU memory (alkahest's own; CuPy, PyTorch and Numba read it through
    ``__cuda_array_interface__``). ``copy_to_host()`` gives a NumPy array."""

    def __init__(self, buffer, shape: Sequence[int], dtype: np.dtype):
        self._buffer = buffer
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)

    @property
    def ptr(self) -> int:
        return self._buffer.ptr

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def __cuda_array_interface__(self) -> dict:
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.ptr, False), "version": 3,
                "strides": None}

    def copy_to_host(self) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        if out.nbytes:
            self._buffer.device.activate()
            self._buffer.device.copy_to_host(out.ctypes.data, self.ptr, out.nbytes)
        return out

    def __repr__(self) -> str:
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype}, device={self._buffer.device.ordinal})"

    @classmethod
    def empty(cls, device, shape: Sequence[int], dtype: np.dtype) -> "DeviceArray":
        return cls(device.alloc(math.prod(shape) * np.dtype(dtype).itemsize), shape, dtype)

    @classmethod
    def from_host(cls, device, array: np.ndarray) -> "DeviceArray":
        array = np.ascontiguousarray(array)
        out = cls.empty(device, array.shape, array.dtype)
        if array.nbytes:
            device.copy_to_device(out.ptr, array.ctypes.data, array.nbytes)
        return out

    @classmethod
    def empty_like_inputs(cls, device, shape: Sequence[int], dtype: np.dtype, inputs: Sequence[Any]):
        """A result array of the kind the device inputs are: CuPy for CuPy, PyTorch for
        PyTorch, else a :class:`DeviceArray`."""
        for a in inputs:
            module = type(a).__module__
            if module.startswith("cupy"):
                import cupy

                with cupy.cuda.Device(device.ordinal):
                    return cupy.empty(tuple(shape), dtype=dtype)
            if module.startswith("torch"):
                import torch

                return torch.empty(tuple(shape), dtype=getattr(torch, str(np.dtype(dtype))), device=a.device)
        return cls.empty(device, shape, dtype)
