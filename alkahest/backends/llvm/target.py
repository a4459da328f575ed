"""The host as LLVM sees it: initialisation, CPU, vector width, the routines JIT code calls."""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass, field
from typing import Mapping, Tuple

from ... import _native

#: LLVM is not thread-safe across one context; every llvmlite call of this tier holds it.
LOCK = threading.RLock()


def _llvmlite_lock():
    """llvmlite's own lock around every call into LLVM (also taken when llvmlite objects
    are freed, which may happen on any thread outside ``LOCK``); None if it moved."""
    try:
        from llvmlite.binding import ffi

        lock = ffi.lib._lock._lock
        return lock if hasattr(lock, "acquire") and hasattr(lock, "release") else None
    except (ImportError, AttributeError):
        return None


def _before_fork() -> None:
    LOCK.acquire()
    inner = _llvmlite_lock()
    if inner is not None:
        inner.acquire()


def _after_fork() -> None:
    inner = _llvmlite_lock()
    if inner is not None:
        inner.release()
    LOCK.release()


# A fork waits for any LLVM work in flight: a child must not inherit LLVM (or a lock
# around it) in the middle of a call by a thread that does not exist in the child.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork)


@dataclass(frozen=True)
class Host:
    """What code is generated for: triple, CPU name and features, vector lanes of doubles,
    and the libmvec routines bulk evaluation uses (``{op: (symbol, lanes)}``); the same for
    floats (twice the lanes in the same registers)."""

    triple: str
    cpu: str
    features: str
    width: int
    vector_fns: Mapping[str, Tuple[str, int]]
    llvm_version: str
    float_vector_fns: Mapping[str, Tuple[str, int]] = field(default_factory=dict)

    def for_scalar(self, scalar: str) -> Tuple[int, Mapping[str, Tuple[str, int]]]:
        """(lanes, vector routines) for elements of LLVM type ``scalar`` ("double", "float")."""
        if scalar == "float":
            return 2 * self.width, self.float_vector_fns
        return self.width, self.vector_fns


def llvm():
    """``llvmlite.binding``, initialised once, with alkahest's routines registered.

    Raises ImportError when llvmlite is not installed.
    """
    return _initialise()


def started() -> bool:
    """Whether LLVM has been initialised in this process (the first compile does it)."""
    return _initialise.cache_info().currsize > 0


@functools.lru_cache(maxsize=None)
def _initialise():
    import llvmlite.binding as binding

    with LOCK:
        binding.initialize_native_target()
        binding.initialize_native_asmprinter()
        # JIT code calls the interpreter's own routines (libm, libmvec, round, gather),
        # resolved by name: registering them makes every tier compute the same bits.
        for name, address in _native.native_symbols().items():
            binding.add_symbol(name, address)
    return binding


@functools.lru_cache(maxsize=None)
def host() -> Host:
    """The host's description (computed once per process)."""
    binding = llvm()
    import llvmlite

    with LOCK:
        cpu = binding.get_host_cpu_name()
        features = binding.get_host_cpu_features().flatten()
        triple = binding.get_process_triple()
    enabled = set(f[1:] for f in features.split(",") if f.startswith("+"))
    vector_fns = dict(_native.vector_math_functions())
    lanes = {n for _, n in vector_fns.values()}
    if lanes:
        # The interpreter chose these routines for this CPU; use vectors of their width.
        width = max(lanes)
    elif "avx512f" in enabled:
        width = 8
    elif "avx" in enabled:
        width = 4
    else:
        width = 2
    return Host(triple, cpu, features, width, vector_fns, f"llvmlite {llvmlite.__version__}",
                dict(_native.vector_math_functions("float32")))


def target_machine(opt_level: int):
    """A fresh target machine for the host (MCJIT takes ownership of the one it gets)."""
    binding = llvm()
    h = host()
    with LOCK:
        target = binding.Target.from_triple(h.triple)
        return target.create_target_machine(
            cpu=h.cpu, features=h.features, opt=opt_level, codemodel="jitdefault", jit=True
        )
