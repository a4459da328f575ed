"""GPU tier throughput (needs an NVIDIA GPU): the suite at 1e7 and 1e8 points in float64
and float32, kernel time (inputs and outputs on the device) and end-to-end time (NumPy in,
NumPy out, transfers included) against the LLVM tier on all CPU cores and against the
device's memory bandwidth (a device-to-device copy of the same bytes).

    python benchmarks/gpu.py [--sizes 1e7,1e8] [--cases black_scholes,where]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import alkahest as ak  # noqa: E402
from alkahest.backends.cuda import DeviceArray, runtime  # noqa: E402
from suite import SUITE  # noqa: E402


def best(fn, repeat=5):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def copy_seconds(dev, nbytes):
    """A device-to-device copy of nbytes: the memory-bandwidth yardstick."""
    src, dst = dev.alloc(nbytes), dev.alloc(nbytes)
    drv = runtime._driver()

    def copy():
        runtime._call("cuMemcpyDtoD", drv.cuMemcpyDtoD, dst.ptr, src.ptr, nbytes)
        runtime._call("cuCtxSynchronize", drv.cuCtxSynchronize)

    return best(copy)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1e7,1e8")
    ap.add_argument("--cases", default=",".join(c.name for c in SUITE))
    args = ap.parse_args(argv)
    dev = runtime.device(0)
    print(f"device: sm_{dev.compute_capability[0]}{dev.compute_capability[1]}, {dev.sm_count} SMs\n")
    print("| case | n | dtype | kernel ms | end-to-end ms | copy-bandwidth ms (same bytes) | LLVM all cores ms | LLVM / kernel |")
    print("|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for case in (c for c in SUITE if c.name in args.cases.split(",")):
        expr, vars = case.build(ak.ExprPool())
        cpu = ak.compile_expr(expr, vars, ak.CompileConfig(tier="llvm"), cache=False)
        for n in (int(float(s)) for s in args.sizes.split(",")):
            host = case.inputs(rng, n)
            t_cpu = best(lambda: ak.numpy_eval_par(cpu, *host), repeat=3)
            for dtype in ("float64", "float32"):
                f = ak.compile_cuda(expr, vars, ak.CudaConfig(dtype=dtype))
                dev_in = [f.to_device(a) for a in host]
                out = DeviceArray.empty(dev, (n,), np.dtype(dtype))
                t_kernel = best(lambda: f(*dev_in, out=out))
                t_e2e = best(lambda: f(*host), repeat=3)
                moved = (len(host) + 1) * n * np.dtype(dtype).itemsize
                t_copy = copy_seconds(dev, moved // 2)  # a copy reads and writes: moved bytes in all
                print(f"| {case.name} | {n:.0e} | {dtype} | {t_kernel * 1e3:.3f} | {t_e2e * 1e3:.2f} | "
                      f"{t_copy * 1e3:.3f} | {t_cpu * 1e3:.2f} | {t_cpu / t_kernel:.1f} |")


if __name__ == "__main__":
    main()
