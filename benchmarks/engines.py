"""The engines the runner times: alkahest's tiers and the peers (NumPy, numexpr, numba).
A later tier or peer adds itself here as one more ``Engine``; the runner, the tables and
the JSON need no change."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, List, Optional

import numpy as np

import alkahest as ak
from suite import Case

Runner = Callable[[List[np.ndarray]], np.ndarray]


@dataclass
class Engine:
    name: str
    threads: int  # 0: the engine decides / not applicable
    prepare: Callable[[Case], Optional[Runner]]  # None: cannot express the case


def all_threads() -> int:
    return ak._native.default_threads()


def alkahest_engine(tier: str, threads: int) -> Engine:
    def prepare(case: Case) -> Runner:
        expr, vars = case.build(ak.ExprPool())
        f = ak.compile_expr(expr, vars, ak.CompileConfig(tier=tier, cache_dir=False), cache=False)
        if threads == 1:
            return lambda arrays: ak.numpy_eval(f, *arrays)
        return lambda arrays: ak.numpy_eval_par(f, *arrays, threads=threads)

    return Engine(f"alkahest-{tier}", threads, prepare)


def numpy_engine() -> Engine:
    return Engine("numpy", 1, lambda case: lambda arrays: case.numpy(*arrays))


def numexpr_engine(threads: int) -> Optional[Engine]:
    try:
        import numexpr
    except ImportError:
        return None

    def prepare(case: Case) -> Optional[Runner]:
        if case.numexpr is None:
            return None

        def run(arrays):
            numexpr.set_num_threads(threads)
            return numexpr.evaluate(case.numexpr, local_dict=dict(zip(case.names, arrays)))

        return run

    return Engine("numexpr", threads, prepare)


def numba_kernel(case: Case):
    """The case's scalar function compiled by numba (helpers in its source too)."""
    import math

    import numba

    ns = {"math": math}
    exec(case.scalar, ns)
    for name, obj in list(ns.items()):
        if callable(obj) and getattr(obj, "__module__", None) is None and name != "kernel":
            ns[name] = numba.njit(obj)
    return numba.njit(ns["kernel"])


def numba_engine(threads: int) -> Optional[Engine]:
    """An ``njit`` loop over the points calling the case's scalar kernel (``prange`` with
    ``parallel=True`` on several threads): how a numba user writes it."""
    try:
        import numba
    except ImportError:
        return None

    def prepare(case: Case) -> Optional[Runner]:
        if case.scalar is None:
            return None
        kernel = numba_kernel(case)
        args = [f"a{i}" for i in range(len(case.names))]
        src = (f"def loop({', '.join(args)}, out):\n"
               f"    for i in numba.prange(out.size):\n"
               f"        out[i] = kernel({', '.join(a + '[i]' for a in args)})\n")
        ns = {"numba": numba, "kernel": kernel}
        exec(src, ns)
        loop = numba.njit(parallel=threads > 1)(ns["loop"])

        def run(arrays):
            if threads > 1:
                numba.set_num_threads(threads)
            out = np.empty_like(arrays[0])
            loop(*arrays, out)
            return out

        return run

    return Engine("numba", threads, prepare)


def engines() -> List[Engine]:
    t = all_threads()
    found = [alkahest_engine(tier, n) for tier in ak.AVAILABLE_TIERS for n in sorted({1, t})]
    found.append(numpy_engine())
    found += [e for e in (numexpr_engine(n) for n in sorted({1, t})) if e is not None]
    found += [e for e in (numba_engine(n) for n in sorted({1, t})) if e is not None]
    return found


def machine() -> dict:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {"alkahest": ak.__version__, "numpy": np.__version__}
    for peer in ("numexpr", "numba", "llvmlite"):
        try:
            versions[peer] = __import__(peer).__version__
        except ImportError:
            pass
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": all_threads(),
            "vector_math": ak._native.vector_math_isa(), "versions": versions}
