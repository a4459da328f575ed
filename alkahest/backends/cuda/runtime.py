"""The CUDA driver through cuda-python: devices, primary contexts, PTX modules, memory,
launches. Every driver failure becomes one of alkahest's CUDA errors with a message that
says what to do; nothing here runs until a GPU function is called.

One :class:`Device` per ordinal, created on first use and kept for the process: it holds
the retained primary context and the modules loaded into it (keyed by PTX text).
"""

from __future__ import annotations

import ctypes
import functools
import threading
from typing import Dict, Sequence, Tuple

from ...errors import CudaDeviceError, CudaDriverError, CudaToolkitError, PTXVersionError

_LOCK = threading.Lock()


@functools.lru_cache(maxsize=None)
def _driver():
    """``cuda.bindings.driver``, initialised (``cuInit``)."""
    try:
        from cuda.bindings import driver
    except ImportError as e:
        raise CudaToolkitError(
            f"cuda-python is not installed ({e}); pip install 'alkahest[cuda]' to run on a GPU"
        ) from None
    try:
        (result,) = driver.cuInit(0)
    except RuntimeError as e:  # cuda-python cannot load libcuda: no driver on this machine
        raise CudaDriverError(
            f"no NVIDIA driver could be loaded ({e}); GPU functions need a machine with an "
            "NVIDIA GPU and its driver. compile_cuda(...).ptx still works without one."
        ) from None
    if result == driver.CUresult.CUDA_ERROR_NO_DEVICE:
        raise CudaDeviceError("the NVIDIA driver reports no CUDA device on this machine")
    _check(driver, result, "cuInit")
    return driver


def _check(driver, result, what: str) -> None:
    if result == driver.CUresult.CUDA_SUCCESS:
        return
    try:
        _, name = driver.cuGetErrorName(result)
        name = name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # noqa: BLE001 - the name is only for the message
        name = str(result)
    if result in (driver.CUresult.CUDA_ERROR_UNSUPPORTED_PTX_VERSION, driver.CUresult.CUDA_ERROR_INVALID_PTX):
        raise PTXVersionError(
            f"{what} failed with {name}: the driver cannot load this PTX; update the NVIDIA "
            "driver or compile for an older architecture (CudaConfig(arch=...))"
        )
    if result in (driver.CUresult.CUDA_ERROR_INVALID_DEVICE, driver.CUresult.CUDA_ERROR_NO_DEVICE):
        raise CudaDeviceError(f"{what} failed with {name}")
    raise CudaDriverError(f"{what} failed with {name}")


def _call(what: str, fn, *args):
    """Calls a driver function, checks its result, returns the remaining values."""
    driver = _driver()
    out = fn(*args)
    _check(driver, out[0], what)
    if len(out) == 1:
        return None
    return out[1] if len(out) == 2 else out[1:]


class DeviceBuffer:
    """Device memory, freed when dropped."""

    def __init__(self, device: "Device", nbytes: int):
        self.device = device
        self.nbytes = nbytes
        self.ptr = int(_call("cuMemAlloc", _driver().cuMemAlloc, max(nbytes, 1)))

    def __del__(self):
        try:
            self.device.activate()
            _driver().cuMemFree(self.ptr)
        except Exception:  # noqa: BLE001 - interpreter shutdown or a dead context
            pass


class Device:
    """A CUDA device with its primary context and the PTX modules loaded into it."""

    def __init__(self, ordinal: int):
        driver = _driver()
        count = _call("cuDeviceGetCount", driver.cuDeviceGetCount)
        if not 0 <= ordinal < count:
            raise CudaDeviceError(f"there is no CUDA device {ordinal} (this machine has {count})")
        self.ordinal = ordinal
        self.handle = _call("cuDeviceGet", driver.cuDeviceGet, ordinal)
        attr = driver.CUdevice_attribute
        major = _call("cuDeviceGetAttribute", driver.cuDeviceGetAttribute,
                      attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, self.handle)
        minor = _call("cuDeviceGetAttribute", driver.cuDeviceGetAttribute,
                      attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, self.handle)
        self.sm_count = _call("cuDeviceGetAttribute", driver.cuDeviceGetAttribute,
                              attr.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, self.handle)
        self.compute_capability: Tuple[int, int] = (int(major), int(minor))
        self.context = _call("cuDevicePrimaryCtxRetain", driver.cuDevicePrimaryCtxRetain, self.handle)
        self._functions: Dict[str, object] = {}

    @property
    def arch(self) -> str:
        """``sm_<major><minor>`` of this device."""
        return "sm_%d%d" % self.compute_capability

    def activate(self) -> None:
        """Makes this device's context current on the calling thread."""
        _call("cuCtxSetCurrent", _driver().cuCtxSetCurrent, self.context)

    def function(self, ptx: str, name: str):
        """The kernel ``name`` of ``ptx``, loading the module on first use."""
        key = ptx
        with _LOCK:
            if key not in self._functions:
                self.activate()
                module = _call("cuModuleLoadData", _driver().cuModuleLoadData, ptx.encode() + b"\0")
                self._functions[key] = _call("cuModuleGetFunction", _driver().cuModuleGetFunction,
                                             module, name.encode())
            return self._functions[key]

    def alloc(self, nbytes: int) -> DeviceBuffer:
        return DeviceBuffer(self, nbytes)

    def copy_to_device(self, dst: int, host_ptr: int, nbytes: int) -> None:
        _call("cuMemcpyHtoD", _driver().cuMemcpyHtoD, dst, host_ptr, nbytes)

    def copy_to_host(self, host_ptr: int, src: int, nbytes: int) -> None:
        _call("cuMemcpyDtoH", _driver().cuMemcpyDtoH, host_ptr, src, nbytes)

    def launch(self, function, params: Sequence[ctypes._SimpleCData], n: int, block: int) -> None:
        """Runs ``function`` over ``n`` points (grid-stride: enough blocks to fill the
        device, each thread looping) with ``params`` in order, and waits for it."""
        # The driver wants an array of pointers to the parameter values.
        pointers = (ctypes.c_void_p * len(params))(*[ctypes.addressof(p) for p in params])
        blocks = max(1, min((n + block - 1) // block, self.sm_count * 32))
        _call("cuLaunchKernel", _driver().cuLaunchKernel, function, blocks, 1, 1, block, 1, 1, 0, 0,
              ctypes.addressof(pointers), 0)
        _call("cuCtxSynchronize", _driver().cuCtxSynchronize)


_DEVICES: Dict[int, Device] = {}


def device(ordinal: int = 0) -> Device:
    """The device ``ordinal`` (created once per process). Raises the CUDA errors of
    :mod:`alkahest.errors` when there is no driver or no such device."""
    with _LOCK:
        if ordinal not in _DEVICES:
            _DEVICES[ordinal] = Device(ordinal)
        return _DEVICES[ordinal]


def device_arch_or(default: str) -> str:
    """The architecture of device 0, or ``default`` when no GPU can be used."""
    try:
        return device(0).arch
    except (CudaDriverError, CudaDeviceError, CudaToolkitError):
        return default
