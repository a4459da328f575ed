"""The GPU tier: ``compile_cuda`` turns expressions into a CUDA kernel (PTX from LLVM's
NVPTX backend with libdevice, :mod:`.ptxgen`) run through cuda-python (:mod:`.runtime`).

>>> f = compile_cuda(ak.sin(x) * y, [x, y])          # doctest: +SKIP
>>> print(f.ptx[:40])                                  # works without a GPU
>>> f(xs, ys)                                          # NumPy in, NumPy out (copies)
>>> f(cupy_x, cupy_y)                                  # device arrays in place

NumPy inputs are copied to the device and the results back: for one pass over the data
the PCIe transfers usually cost more than the computation, so keep data on the device
(CuPy, PyTorch, or ``f.to_device``) when calling repeatedly.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple, Union

import numpy as np

from ... import _native
from ...config import dtype_name
from ...errors import AlkahestError, ArityError, CompileError, ConfigError, DTypeError, ShapeError, TierUnavailableError
from ..llvm.emitter import UnsupportedTape
from ..tapeview import TapeView
from . import ptxgen, runtime
from .device_array import DeviceArray, as_device_view

__all__ = ["CudaConfig", "CudaFn", "DeviceArray", "compile_cuda"]

#: This tier's name in the registry (``alkahest.tiers``).
TIER = "cuda"


@dataclass(frozen=True)
class CudaConfig:
    """Options for :func:`compile_cuda`.

    ``dtype``: ``"float64"`` or ``"float32"`` (or ``np.float32``, as ``CompileConfig(dtype=...)``
    takes it; float32 uses libdevice's ``__nv_*f`` functions). ``arch``: the GPU architecture the PTX is for (``"sm_80"``, ...); None
    means the compute capability of device 0, else ``sm_80``. ``device``: the ordinal
    the function runs on. ``block_size``: threads per block.
    """

    dtype: str = "float64"
    arch: Optional[str] = None
    device: int = 0
    block_size: int = 256

    def __post_init__(self) -> None:
        # The element types of CompileConfig(dtype=...), spelled the same ways.
        try:
            object.__setattr__(self, "dtype", dtype_name(self.dtype))
        except ConfigError:
            pass
        if self.dtype not in ptxgen.SCALAR:
            raise DTypeError(f"CudaConfig(dtype=...) must be one of {', '.join(ptxgen.SCALAR)}, got {self.dtype!r}")
        if self.arch is not None and self.arch not in ptxgen.PTX_VERSION:
            raise ConfigError(f"unknown GPU architecture {self.arch!r}; choose one of {', '.join(ptxgen.PTX_VERSION)}")
        if not (isinstance(self.block_size, int) and 32 <= self.block_size <= 1024 and self.block_size % 32 == 0):
            raise ConfigError(f"block_size must be a multiple of 32 between 32 and 1024, got {self.block_size!r}")


class CudaFn:
    """A compiled GPU function. ``f(*arrays)`` / ``f.call_batch(*arrays, out=None)``
    evaluate elementwise over arrays that broadcast together; ``f.ptx`` is the code."""

    #: The registry tier it runs on.
    tier = TIER

    def __init__(self, tape, var_names: List[str], ptx: str, config: CudaConfig, arch: str):
        self.tape = tape
        self.var_names = var_names
        self.ptx = ptx
        self.arch = arch
        self.config = config
        self.dtype = np.dtype(config.dtype)

    @property
    def n_inputs(self) -> int:
        return self.tape.n_inputs

    @property
    def n_outputs(self) -> int:
        return self.tape.n_outputs

    def __repr__(self) -> str:
        return (f"CudaFn(f({', '.join(self.var_names)}) -> {self.n_outputs} output"
                f"{'s' * (self.n_outputs > 1)}, dtype={self.config.dtype}, arch={self.arch})")

    def __call__(self, *arrays: Any, out: Any = None) -> Union[Any, Tuple[Any, ...]]:
        return self.call_batch(*arrays, out=out)

    def to_device(self, array: Any) -> DeviceArray:
        """A copy of ``array`` on this function's device, in its dtype."""
        dev = runtime.device(self.config.device)
        dev.activate()
        return DeviceArray.from_host(dev, np.ascontiguousarray(array, dtype=self.dtype))

    def call_batch(self, *arrays: Any, out: Any = None) -> Union[Any, Tuple[Any, ...]]:
        """Evaluates over arrays: NumPy arrays (copied to the device, results copied back
        as NumPy arrays) or device arrays (``__cuda_array_interface__`` or CUDA DLPack:
        CuPy, PyTorch, ...; read in place, results on the device). ``out``: device arrays
        to write into (C-contiguous, this dtype, the broadcast shape)."""
        if len(arrays) != self.n_inputs:
            raise ArityError(f"{self!r} takes {self.n_inputs} input arrays, got {len(arrays)}")
        dev = runtime.device(self.config.device)
        dev.activate()
        function = dev.function(self.ptx, ptxgen.KERNEL)
        views = [as_device_view(a, self.dtype) for a in arrays]
        on_device = any(v is not None for v in views)
        host = [None if v is not None else np.asarray(a) for a, v in zip(arrays, views)]
        shapes = [v.shape if v is not None else np.shape(h) for v, h in zip(views, host)]  # type: ignore[arg-type]
        try:
            shape = np.broadcast_shapes(*shapes) if shapes else ()
        except ValueError:
            raise ShapeError(f"input shapes {', '.join(map(str, shapes))} do not broadcast together") from None
        n = math.prod(shape)
        keep: List[Any] = []  # device memory that must live until the kernel is done
        params: List[ctypes._SimpleCData] = []
        for i, (v, h) in enumerate(zip(views, host)):
            if v is not None:
                ptr, stride = v.pointer_and_stride(shape, i)
            else:
                data = np.asarray(h).astype(self.dtype, copy=False)
                if data.size == 1:
                    data, stride = data.reshape(1), 0
                else:
                    data, stride = np.ascontiguousarray(np.broadcast_to(data, shape)), 1
                buf = DeviceArray.from_host(dev, data)
                keep.append(buf)
                ptr = buf.ptr
            params += [ctypes.c_void_p(ptr), ctypes.c_int64(stride)]
        outs = self._outputs(dev, shape, out, on_device, arrays)
        params += [ctypes.c_void_p(o.ptr) for o in outs] + [ctypes.c_int64(n)]
        if n:
            dev.launch(function, params, n, self.config.block_size)
        results = [o.result() for o in outs]
        return results[0] if self.n_outputs == 1 else tuple(results)

    def _outputs(self, dev, shape, out, on_device: bool, arrays) -> List["_Output"]:
        if out is not None:
            outs = [out] if self.n_outputs == 1 and not isinstance(out, (list, tuple)) else list(out)
            if len(outs) != self.n_outputs:
                raise ArityError(f"out must hold {self.n_outputs} arrays")
            views = [as_device_view(o, self.dtype) for o in outs]
            checked = [v for v in views if v is not None and tuple(v.shape) == tuple(shape) and v.contiguous]
            if len(checked) != len(views):
                raise ShapeError(f"out must be C-contiguous {self.dtype} device arrays of shape {shape}")
            return [_Output(v.ptr, o) for v, o in zip(checked, outs)]
        result = []
        for _ in range(self.n_outputs):
            if on_device:
                arr = DeviceArray.empty_like_inputs(dev, shape, self.dtype, arrays)
                view = None if isinstance(arr, DeviceArray) else as_device_view(arr, self.dtype)
                result.append(_Output(arr.ptr if isinstance(arr, DeviceArray) else view.ptr if view else 0, arr))
            else:
                arr = DeviceArray.empty(dev, shape, self.dtype)
                result.append(_Output(arr.ptr, arr, to_host=True))
        return result


class _Output:
    def __init__(self, ptr: int, array: Any, to_host: bool = False):
        self.ptr, self.array, self.to_host = ptr, array, to_host

    def result(self):
        return self.array.copy_to_host() if self.to_host else self.array


def compile_cuda(expr_or_list, vars, config: Optional[CudaConfig] = None) -> CudaFn:
    """Compiles expressions to a CUDA kernel. Needs no GPU: without one, ``f.ptx`` is the
    code and calling ``f`` raises :class:`~alkahest.errors.CudaDriverError` (or
    ``CudaDeviceError``) saying what is missing.

    >>> f = compile_cuda(ak.sin(x) + y, [x, y], CudaConfig(dtype="float32"))  # doctest: +SKIP
    >>> f(np.linspace(0, 1, 10**7), 2.0)  # doctest: +SKIP
    """
    from ... import tiers
    from ...compile import normalise, var_names

    config = config or CudaConfig()
    if not isinstance(config, CudaConfig):
        raise ConfigError(f"compile_cuda takes a CudaConfig, not {type(config).__name__}")
    outputs, inputs = normalise(expr_or_list, vars)
    tier = tiers.get(TIER)
    why = tier.unavailable()
    if why:
        raise TierUnavailableError(f"the GPU tier is not available in this installation of alkahest ({why})")
    return tier.compile(_native.lower(outputs, inputs), var_names(inputs), config, None)


def compile_tape(tape: Any, names: List[str], config: CudaConfig) -> CudaFn:
    """The registry's compile for this tier: ``tape`` as a :class:`CudaFn`."""
    arch = config.arch or runtime.device_arch_or(ptxgen.DEFAULT_ARCH)
    if arch not in ptxgen.PTX_VERSION:
        arch = ptxgen.DEFAULT_ARCH  # a newer GPU than this table: its driver JITs sm_80 PTX
    try:
        ptx = ptxgen.ptx_for(TapeView.of(tape), config.dtype, arch)
    except UnsupportedTape as e:
        raise CompileError(f"the GPU tier cannot compile this: {e}") from None
    except AlkahestError:
        raise  # a missing toolkit piece says so itself
    except RuntimeError as e:  # llvmlite reports LLVM's errors so
        raise CompileError(f"LLVM's NVPTX backend failed: {e}") from None
    return CudaFn(tape, names, ptx, config, arch)
