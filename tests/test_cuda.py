"""The GPU tier. Without a GPU: PTX for every operation and suite expression, f64 and
f32, assembles with ptxas for sm_80 and sm_90; generating it never aborts the process;
missing drivers, devices, toolkits and PTX support raise alkahest's CUDA errors. With a
GPU (skipped otherwise, saying so): results against the CPU tiers."""

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import alkahest as ak
from alkahest.backends.cuda import device_array, ptxgen, runtime, toolkit

HERE = Path(__file__).resolve().parent


def _gpu_available() -> bool:
    try:
        runtime.device(0)
    except ak.CudaError:
        return False
    return True


GPU = _gpu_available()
needs_gpu = pytest.mark.skipif(not GPU, reason="needs an NVIDIA GPU and driver (none on this machine)")


# --- code generation (no GPU needed) ---------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("ptx")
    proc = subprocess.run(
        [sys.executable, str(HERE / "gpu_codegen_check.py"), str(out), "float64,float32", "sm_80,sm_90"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(HERE.parent)},
    )
    assert proc.returncode == 0, f"PTX generation died (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
    files = sorted(out.glob("*.ptx"))
    assert len(files) == int(proc.stdout.split()[-1]) > 0
    return files


def test_every_operation_and_suite_expression_assembles_with_ptxas(generated):
    names = {f.name.split(".")[0] for f in generated}
    assert {"op-sin", "op-tanh", "op-min", "op-fma", "op-select", "suite-black_scholes", "suite-dag500"} <= names
    from alkahest.ops import OPS

    every_op = {f"op-{op}" for op in OPS}
    assert {n for n in names if n.startswith("op-")} == every_op
    ptxas = toolkit.ptxas()
    failures = []
    for f in generated:
        arch = f.name.split(".")[2]
        r = subprocess.run([str(ptxas), f"-arch={arch}", str(f), "-o", os.devnull], capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(f"{f.name}: {r.stderr.strip()[:300]}")
    assert not failures, "\n".join(failures)


def test_ptx_uses_libdevice_and_never_llvm_math_intrinsics(generated):
    for f in generated:
        text = f.read_text()
        assert ".entry alkahest_kernel" in text
        assert "llvm.sin" not in text and "llvm.exp" not in text
    sin64 = next(f for f in generated if f.name == "op-sin.float64.sm_80.ptx").read_text()
    assert ".f64" in sin64 and ".target sm_80" in sin64
    sin32 = next(f for f in generated if f.name == "op-sin.float32.sm_90.ptx").read_text()
    assert ".f32" in sin32 and ".target sm_90" in sin32
    # No flush-to-zero: subnormals behave as on the CPU.
    assert ".ftz" not in sin64 and ".ftz" not in sin32


def test_compile_cuda_without_a_gpu_gives_ptx_and_a_clear_error(xy):
    x, y = xy
    f = ak.compile_cuda([ak.sin(x) * y, x + 1], [x, y])
    assert f.n_inputs == 2 and f.n_outputs == 2 and f.arch in ptxgen.PTX_VERSION
    assert f.ptx.startswith("//") and "alkahest_kernel" in f.ptx
    if not GPU:
        with pytest.raises(ak.CudaError) as info:
            f(np.ones(4), 2.0)
        assert isinstance(info.value, (ak.CudaDriverError, ak.CudaDeviceError))
        assert "driver" in str(info.value) or "device" in str(info.value)


def test_config_and_arch_choices(xy):
    x, y = xy
    g = ak.compile_cuda(x * y, [x, y], ak.CudaConfig(dtype="float32", arch="sm_90"))
    assert g.arch == "sm_90" and g.dtype == np.float32 and ".target sm_90" in g.ptx
    with pytest.raises(ak.DTypeError):
        ak.CudaConfig(dtype="float16")
    with pytest.raises(ValueError, match="architecture"):
        ak.CudaConfig(arch="sm_1")
    with pytest.raises(ValueError, match="block_size"):
        ak.CudaConfig(block_size=100)
    with pytest.raises(ak.ArityError):
        ak.compile_cuda([], [x])


# --- driver errors (simulated; no GPU needed) ---------------------------------------


@pytest.fixture
def fresh_driver():
    runtime._driver.cache_clear()
    runtime._DEVICES.clear()
    yield
    runtime._driver.cache_clear()
    runtime._DEVICES.clear()


def test_no_driver_raises_cuda_driver_error(fresh_driver, monkeypatch):
    from cuda.bindings import driver

    def no_libcuda(flags):
        raise RuntimeError('"cuda" is an NVIDIA driver library and can only be found via system search')

    monkeypatch.setattr(driver, "cuInit", no_libcuda)
    with pytest.raises(ak.CudaDriverError, match="no NVIDIA driver"):
        runtime.device(0)
    assert runtime.device_arch_or("sm_80") == "sm_80"


def test_no_device_raises_cuda_device_error(fresh_driver, monkeypatch):
    from cuda.bindings import driver

    monkeypatch.setattr(driver, "cuInit", lambda flags: (driver.CUresult.CUDA_ERROR_NO_DEVICE,))
    with pytest.raises(ak.CudaDeviceError, match="no CUDA device"):
        runtime.device(0)


def test_missing_cuda_python_raises_toolkit_error(fresh_driver, monkeypatch):
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)
    with pytest.raises(ak.CudaToolkitError, match="cuda-python"):
        runtime.device(0)


def test_driver_results_map_to_specific_errors():
    from cuda.bindings import driver

    with pytest.raises(ak.PTXVersionError, match="update the NVIDIA driver"):
        runtime._check(driver, driver.CUresult.CUDA_ERROR_UNSUPPORTED_PTX_VERSION, "cuModuleLoadData")
    with pytest.raises(ak.CudaDeviceError):
        runtime._check(driver, driver.CUresult.CUDA_ERROR_INVALID_DEVICE, "cuDeviceGet")
    with pytest.raises(ak.CudaDriverError, match="CUDA_ERROR_OUT_OF_MEMORY"):
        runtime._check(driver, driver.CUresult.CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc")
    runtime._check(driver, driver.CUresult.CUDA_SUCCESS, "cuInit")


def test_toolkit_honours_cuda_home(tmp_path, monkeypatch):
    (tmp_path / "bin").mkdir()
    (tmp_path / "nvvm" / "libdevice").mkdir(parents=True)
    fake = tmp_path / "bin" / "ptxas"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    (tmp_path / "nvvm" / "libdevice" / "libdevice.10.bc").write_bytes(b"BC")
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    toolkit.ptxas.cache_clear()
    toolkit.libdevice.cache_clear()
    try:
        assert toolkit.ptxas() == fake
        assert toolkit.libdevice() == tmp_path / "nvvm" / "libdevice" / "libdevice.10.bc"
    finally:
        toolkit.ptxas.cache_clear()
        toolkit.libdevice.cache_clear()


def test_missing_toolkit_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(toolkit, "_roots", lambda: [])
    toolkit.ptxas.cache_clear()
    toolkit.libdevice.cache_clear()
    try:
        with pytest.raises(ak.CudaToolkitError, match="alkahest\\[cuda\\]"):
            toolkit.libdevice()
        assert toolkit.find_ptxas() is None
    finally:
        toolkit.ptxas.cache_clear()
        toolkit.libdevice.cache_clear()


# --- device-array plumbing, checked on the CPU -------------------------------------


def test_dlpack_views_read_pointer_shape_and_strides():
    a = np.arange(24.0).reshape(4, 6)
    kind, view, dtype = device_array.dlpack_view(a)
    assert kind == device_array.KDL_CPU and dtype == np.float64
    assert view.ptr == a.ctypes.data and view.shape == (4, 6) and view.contiguous
    b = a[:, ::2]
    _, view, _ = device_array.dlpack_view(b)
    assert view.ptr == b.ctypes.data and view.shape == (4, 3) and view.strides == (6, 2)
    assert not view.contiguous
    assert device_array.as_device_view(a, np.dtype(np.float64)) is None  # host memory: copied, not viewed


def test_cuda_array_interface_views_and_their_checks():
    class Fake:
        def __init__(self, shape, typestr="<f8", strides=None):
            self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr, "data": (4096, False),
                                             "strides": strides, "version": 3}

    v = device_array.as_device_view(Fake((10,)), np.dtype(np.float64))
    assert (v.ptr, v.shape, v.pointer_and_stride((10,), 0)) == (4096, (10,), (4096, 1))
    v = device_array.as_device_view(Fake((10,), strides=(24,)), np.dtype(np.float64))
    assert v.pointer_and_stride((10,), 0) == (4096, 3)
    v = device_array.as_device_view(Fake((1,)), np.dtype(np.float64))
    assert v.pointer_and_stride((5, 7), 0) == (4096, 0)
    with pytest.raises(ak.DTypeError, match="float32"):
        device_array.as_device_view(Fake((10,), "<f4"), np.dtype(np.float64))
    with pytest.raises(ak.ShapeError, match="C-contiguous"):
        device_array.as_device_view(Fake((4, 6), strides=(8, 32)), np.dtype(np.float64)).pointer_and_stride((4, 6), 1)


def test_kernel_parameters_are_laid_out_as_the_kernel_declares(xy):
    x, y = xy
    ir = ptxgen.kernel_ir(ptxgen.TapeView.of(ak.lower([x * y, x], [x, y])), "float32")
    assert "define ptx_kernel void @alkahest_kernel(ptr %in0, i64 %s0, ptr %in1, i64 %s1, ptr %out0, ptr %out1, i64 %n)" in ir
    assert ctypes.sizeof(ctypes.c_void_p) == 8  # params are passed as 64-bit pointers and int64


# --- on a GPU -------------------------------------------------------------------------


@needs_gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_suite_matches_the_cpu(dtype):
    sys.path.insert(0, str(HERE.parent / "benchmarks"))
    import suite

    rng = np.random.default_rng(5)
    for case in suite.SUITE:
        expr, vars = case.build(ak.ExprPool())
        arrays = case.inputs(rng, 100_003)
        want = ak.numpy_eval(ak.compile_expr(expr, vars, cache=False), *arrays)
        got = ak.compile_cuda(expr, vars, ak.CudaConfig(dtype=dtype))(*arrays)
        tol = 1e-13 if dtype == "float64" else 2e-5
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=case.name)


@needs_gpu
def test_random_expressions_match_the_reference_within_the_ulp_bound():
    from hypothesis import given, settings

    from reference import assert_close
    from strategies import points, setup_case, trees

    @settings(max_examples=100, deadline=None)
    @given(trees, points)
    def check(tree, pts):
        syms, inputs, expr, ref = setup_case(tree, pts)
        f = ak.compile_cuda(expr, syms)
        assert_close(f(*inputs), ref, "gpu vs reference")

    check()


@needs_gpu
def test_device_inputs_strides_broadcasting_and_several_outputs(xy):
    x, y = xy
    f = ak.compile_cuda([ak.sin(x) * y, ak.where(x > y, x, y)], [x, y])
    g = ak.compile_expr([ak.sin(x) * y, ak.where(x > y, x, y)], [x, y], cache=False)
    a = np.linspace(-3, 3, 20_001)
    b = np.linspace(2, -2, 20_001)
    want = ak.numpy_eval(g, a, b)
    for got in (f(a, b), f(a[::-1][::-1], b)):
        for u, v in zip(got, want):
            np.testing.assert_allclose(u, v, rtol=1e-14)
    da, db = f.to_device(a), f.to_device(b)
    on_device = f(da, db)
    assert all(isinstance(o, ak.backends.cuda.DeviceArray) for o in on_device)
    for u, v in zip(on_device, want):
        np.testing.assert_allclose(u.copy_to_host(), v, rtol=1e-14)
    # A strided host input and a broadcast scalar.
    wide = np.repeat(a, 2)
    got = f(wide[::2], 0.5)
    np.testing.assert_allclose(got[0], ak.numpy_eval(g, a, 0.5)[0], rtol=1e-14)


# --- the run path against a simulated driver (host memory, kernel computed on the CPU) ---


class _SimulatedDriver:
    """Just enough of cuda.bindings.driver: 'device memory' is host memory and a launch
    evaluates the function with the CPU interpreter on the pointers and strides the
    kernel would receive, so the marshalling, copies, strides and outputs are exercised."""

    def __init__(self, real, fn, cpu):
        self.CUresult, self.CUdevice_attribute = real.CUresult, real.CUdevice_attribute
        self.fn, self.cpu = fn, cpu
        self.buffers = {}
        self.launches = []
        ok = real.CUresult.CUDA_SUCCESS
        self.cuInit = lambda flags: (ok,)
        self.cuDeviceGetCount = lambda: (ok, 1)
        self.cuDeviceGet = lambda ordinal: (ok, ordinal)
        self.cuDeviceGetAttribute = lambda attr, dev: (ok, {75: 8, 76: 0}.get(int(attr), 108))
        self.cuDevicePrimaryCtxRetain = lambda dev: (ok, "ctx")
        self.cuCtxSetCurrent = lambda ctx: (ok,)
        self.cuModuleLoadData = lambda image: (ok, image)
        self.cuModuleGetFunction = lambda module, name: (ok, (module, name))
        self.cuCtxSynchronize = lambda: (ok,)
        self.cuGetErrorName = lambda result: (ok, b"SIMULATED")

    def cuMemAlloc(self, nbytes):
        buf = ctypes.create_string_buffer(nbytes)
        self.buffers[ctypes.addressof(buf)] = buf
        return (self.CUresult.CUDA_SUCCESS, ctypes.addressof(buf))

    def cuMemFree(self, ptr):
        self.buffers.pop(int(ptr), None)
        return (self.CUresult.CUDA_SUCCESS,)

    def cuMemcpyHtoD(self, dst, src, nbytes):
        ctypes.memmove(dst, src, nbytes)
        return (self.CUresult.CUDA_SUCCESS,)

    def cuMemcpyDtoH(self, dst, src, nbytes):
        ctypes.memmove(dst, src, nbytes)
        return (self.CUresult.CUDA_SUCCESS,)

    def cuLaunchKernel(self, function, gx, gy, gz, bx, by, bz, shared, stream, params, extra):
        module, name = function
        assert name == b"alkahest_kernel" and module.endswith(b"\0") and bx == 256 and gx >= 1
        f = self.fn
        slots = (ctypes.c_void_p * (2 * f.n_inputs + f.n_outputs + 1)).from_address(params)
        value = iter(slots)
        ins = [(ctypes.c_void_p.from_address(next(value)).value,
                ctypes.c_int64.from_address(next(value)).value) for _ in range(f.n_inputs)]
        outs = [ctypes.c_void_p.from_address(next(value)).value for _ in range(f.n_outputs)]
        n = ctypes.c_int64.from_address(next(value)).value
        self.launches.append([s for _, s in ins])
        itemsize = np.dtype(f.config.dtype).itemsize
        arrays = []
        for ptr, stride in ins:
            base = np.frombuffer((ctypes.c_char * (itemsize * (1 + (n - 1) * stride))).from_address(ptr), f.config.dtype)
            arrays.append(np.lib.stride_tricks.as_strided(base, (n,), (stride * itemsize,)))
        results = ak.numpy_eval(self.cpu, *[a.astype(np.float64) for a in arrays])
        results = results if isinstance(results, tuple) else (results,)
        for ptr, r in zip(outs, results):
            np.frombuffer((ctypes.c_char * (itemsize * n)).from_address(ptr), f.config.dtype)[:] = r
        return (self.CUresult.CUDA_SUCCESS,)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_run_path_with_a_simulated_driver(xy, fresh_driver, monkeypatch, dtype):
    from cuda.bindings import driver as real

    x, y = xy
    exprs = [ak.sin(x) * y, ak.where(x > y, x, y)]
    f = ak.compile_cuda(exprs, [x, y], ak.CudaConfig(dtype=dtype, arch="sm_80"))
    sim = _SimulatedDriver(real, f, ak.compile_expr(exprs, [x, y], cache=False))
    monkeypatch.setattr(runtime, "_driver", lambda: sim)
    a, b = np.linspace(-3, 3, 1001), np.linspace(2, -2, 1001)
    # What the simulated device computes: float64 on the inputs' values, rounded.
    wide = [v.astype(dtype).astype(np.float64) for v in (a, b)]
    want = [w.astype(dtype) for w in ak.numpy_eval(sim.cpu, *wide)]
    # NumPy in, NumPy out (copied to the 'device' and back), in the function's dtype.
    got = f(a, b)
    assert all(isinstance(g, np.ndarray) and g.dtype == dtype for g in got)
    assert all(np.array_equal(g, w) for g, w in zip(got, want))
    # A broadcast scalar is sent as one value with stride 0; 2-D inputs broadcast.
    got = f(a, 0.5)
    assert sim.launches[-1] == [1, 0]
    np.testing.assert_array_equal(got[0], ak.numpy_eval(sim.cpu, a.astype(dtype).astype(np.float64), 0.5)[0].astype(dtype))
    grid = f(a[:6].reshape(2, 3), b[:3])
    assert grid[0].shape == (2, 3)
    # Device arrays stay on the device, strided device input read in place (stride 2).
    da, db = f.to_device(a), f.to_device(b)
    on_device = f(da, db)
    assert all(isinstance(o, ak.backends.cuda.DeviceArray) for o in on_device)
    assert all(np.array_equal(o.copy_to_host(), w) for o, w in zip(on_device, want))
    wide = f.to_device(np.repeat(a, 2))
    strided = type("Strided", (), {"__cuda_array_interface__": {
        "shape": (1001,), "typestr": np.dtype(dtype).str, "data": (wide.ptr, False), "strides": (2 * np.dtype(dtype).itemsize,), "version": 3}})()
    got = f(strided, db)
    assert sim.launches[-1] == [2, 1]
    assert np.array_equal(got[0].copy_to_host(), want[0])
    # out= receives results in place; a wrong shape is refused.
    outs = (ak.backends.cuda.DeviceArray.empty(runtime.device(0), (1001,), np.dtype(dtype)),
            ak.backends.cuda.DeviceArray.empty(runtime.device(0), (1001,), np.dtype(dtype)))
    assert f(da, db, out=outs) == outs
    with pytest.raises(ak.ShapeError):
        f(da, db, out=(outs[0], ak.backends.cuda.DeviceArray.empty(runtime.device(0), (5,), np.dtype(dtype))))
    with pytest.raises(ak.DTypeError):
        f(f.to_device(a).__class__.from_host(runtime.device(0), a.astype(np.float16)), db)
    with pytest.raises(ak.ArityError):
        f(a)
