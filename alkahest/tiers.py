"""The tier registry: one entry per tier, registered once. The host (CPU) tiers come in
order of increasing compile cost; the device tiers after them. Compilation, dispatch, the
cost model and its calibration, the ``CompileCache`` key, ``explain``, ``compile_cuda``
and the environment overrides all read it; a tier's name is spelled here and in its own
module only.

A device tier is explicit: ``tier="auto"`` never picks a device the user did not ask
for, nothing falls back to it, and it is compiled through its own front
(``compile_cuda``), which returns a function of its own kind.

Each entry says how to compile a tape for the tier, whether this installation can use it
(and why not), which ``CompileConfig`` options change its code (and so key its cached
functions), and what the cost model must know about it: whether its compile time is
calibrated per ``opt_level`` with a once-per-process start-up and a disk-cache load.

>>> [t.name for t in HOST]
['interpreter', 'cranelift', 'llvm']
>>> [t.name for t in REGISTRY if t.device]
['cuda']
>>> get("llvm").options
('opt_level',)
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple

from .errors import UnknownTierError

if TYPE_CHECKING:  # pragma: no cover
    from ._native import Tape
    from .config import CompileConfig


@dataclass(frozen=True)
class Tier:
    """One tier. ``compile(tape, names, config, fallback_reason, into=None)`` returns a
    ``CompiledFn`` or raises ``CompileError``; ``into`` is a function of the same tape
    that a tier compiling without the GIL switches to the new code itself, as soon as it
    exists (the caller installs it otherwise). ``unavailable()`` is None when this
    installation can use the tier, else the reason."""

    name: str
    #: Host tiers take a ``CompileConfig`` and give a ``CompiledFn``; device tiers their own.
    compile: Callable[..., Any]
    unavailable: Callable[[], Optional[str]]
    #: ``CompileConfig`` fields its code depends on beyond those every tier reads
    #: (``vector_math``, and ``fastmath`` through lowering).
    options: Tuple[str, ...] = ()
    #: The tier every function can fall back to: always available, never disabled, the
    #: start of an adaptive function.
    floor: bool = False
    #: Its calibration has compile costs per ``opt_level``, a once-per-process
    #: ``startup`` and a ``cached`` (disk-cache load) entry.
    per_opt_level: bool = False
    #: Whether the process has paid the tier's start-up already (None: no start-up).
    started: Optional[Callable[[], bool]] = None
    #: Whether the tier's code for ``(tape, config)`` is in its disk cache (None: it
    #: has none), so that a compile is a load.
    disk_cached: Optional[Callable[["Tape", "CompileConfig"], bool]] = None
    #: Runs on an accelerator: explicit only (its own config and function type; never
    #: chosen by ``auto``, never a fallback).
    device: bool = False


def _compile_interpreter(tape: Any, names: list, config: Any, fallback_reason: Optional[str], into: Any = None) -> Any:
    from . import _native

    return _native.compile_interpreter(tape, names, config.vector_math, fallback_reason, dtype=config.element_type)


def _compile_cranelift(tape: Any, names: list, config: Any, fallback_reason: Optional[str], into: Any = None) -> Any:
    from . import _native

    return _native.compile_cranelift(tape, names, config.vector_math, fallback_reason, into, dtype=config.element_type)


def _compile_llvm(tape: Any, names: list, config: Any, fallback_reason: Optional[str], into: Any = None) -> Any:
    from .backends.llvm import compile_llvm

    return compile_llvm(tape, names, config)


def _llvm_unavailable() -> Optional[str]:
    return None if importlib.util.find_spec("llvmlite") else "it needs llvmlite: pip install llvmlite"


def _llvm_started() -> bool:
    try:
        from .backends.llvm import target
    except ImportError:  # pragma: no cover - llvmlite missing: never started
        return False
    return target.started()


def _llvm_disk_cached(tape: Any, config: Any) -> bool:
    from .backends import llvm

    return llvm.disk_cached(tape, config)


def _compile_cuda(tape: Any, names: list, config: Any, fallback_reason: Optional[str], into: Any = None) -> Any:
    """``config`` is a ``CudaConfig``; returns a ``CudaFn``."""
    from .backends.cuda import compile_tape

    return compile_tape(tape, names, config)


REGISTRY: Tuple[Tier, ...] = (
    Tier("interpreter", _compile_interpreter, lambda: None, floor=True),
    Tier("cranelift", _compile_cranelift, lambda: None),
    Tier("llvm", _compile_llvm, _llvm_unavailable, options=("opt_level",), per_opt_level=True,
         started=_llvm_started, disk_cached=_llvm_disk_cached),
    # PTX needs only llvmlite; running it needs cuda-python and a driver, which the
    # function reports when called (its code can be read and shipped without a GPU).
    Tier("cuda", _compile_cuda, _llvm_unavailable, device=True),
)

#: The host tiers: what ``CompileConfig(tier=...)``, ``auto`` and fallback choose from.
HOST: Tuple[Tier, ...] = tuple(t for t in REGISTRY if not t.device)
_BY_NAME = {t.name: t for t in REGISTRY}
#: Every host tier's name, in order of increasing compile cost.
NAMES: Tuple[str, ...] = tuple(t.name for t in HOST)
#: The tier every function can fall back to (and adaptive functions start on).
FLOOR: Tier = next(t for t in HOST if t.floor)


def get(name: str) -> Tier:
    """The tier called ``name``; :class:`UnknownTierError` if there is none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownTierError(f"unknown tier {name!r}; choose one of {', '.join(map(repr, _BY_NAME))}") from None


def rank(name: str) -> int:
    """Position in order of increasing compile cost (a faster tier has a higher rank)."""
    return NAMES.index(name)


def options(name: str) -> Tuple[str, ...]:
    """Config fields that key a function resolved to ``name`` (``"auto"``: every tier's,
    since an adaptive function may reach any of them)."""
    if name == "auto":
        return tuple(dict.fromkeys(o for t in HOST for o in t.options))
    return get(name).options
