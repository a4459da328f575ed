"""``CompileConfig``: what the caller asks of compilation; the environment overrides.

Environment variables (read at each compile, for operations and debugging):

* ``ALKAHEST_TIER=<tier>`` forces every compile, ``tier="auto"`` and explicit requests
  alike, to that tier (``auto`` forces adaptive dispatch).
* ``ALKAHEST_DISABLE_TIERS=llvm,cranelift`` never uses those tiers (for systems where JIT
  memory is restricted): ``auto`` does not consider them and an explicit request falls
  back to the next cheaper tier, saying why in ``f.fallback_reason``. The interpreter
  cannot be disabled.
* ``ALKAHEST_TIERUP=0`` stops adaptive functions from compiling faster tiers in the
  background (bulk calls that are predicted to pay for a compile still do it).
* ``ALKAHEST_CALIBRATION=<file>`` picks the cost model's calibration (see
  :mod:`alkahest.costmodel`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np

from . import tiers
from .errors import ConfigError, TierUnavailableError, UnknownTierError

#: Every tier alkahest knows, in order of increasing compile cost (see :mod:`alkahest.tiers`).
KNOWN_TIERS = tiers.NAMES

#: Tiers this installation can compile to (LLVM needs llvmlite).
AVAILABLE_TIERS = tuple(t.name for t in tiers.HOST if t.unavailable() is None)

FORCE_ENV = "ALKAHEST_TIER"
DISABLE_ENV = "ALKAHEST_DISABLE_TIERS"
TIERUP_ENV = "ALKAHEST_TIERUP"
_OFF = {"0", "off", "false", "no", "none"}


def forced_tier() -> Optional[str]:
    """The tier ``$ALKAHEST_TIER`` forces, or None."""
    value = os.environ.get(FORCE_ENV, "").strip().lower()
    if not value:
        return None
    if value != "auto" and value not in KNOWN_TIERS:
        raise UnknownTierError(
            f"${FORCE_ENV}={value!r} names no tier; use 'auto' or one of {', '.join(map(repr, KNOWN_TIERS))}, or unset it"
        )
    return value


def disabled_tiers() -> frozenset:
    """Tiers ``$ALKAHEST_DISABLE_TIERS`` turns off (never the interpreter)."""
    value = os.environ.get(DISABLE_ENV, "")
    names = {t.strip().lower() for t in value.split(",") if t.strip()}
    unknown = names - set(KNOWN_TIERS)
    if unknown:
        raise UnknownTierError(
            f"${DISABLE_ENV} names unknown tier(s) {', '.join(sorted(unknown))}; "
            f"use {', '.join(t.name for t in tiers.HOST if not t.floor)}"
        )
    return frozenset(names - {tiers.FLOOR.name})


def tierup_enabled() -> bool:
    """False when ``$ALKAHEST_TIERUP`` turns background tier-up off."""
    return os.environ.get(TIERUP_ENV, "1").strip().lower() not in _OFF


def usable_tiers() -> Tuple[str, ...]:
    """Tiers ``auto`` may choose: available in this build and not disabled."""
    off = disabled_tiers()
    return tuple(t for t in AVAILABLE_TIERS if t not in off)


@dataclass(frozen=True)
class CompileConfig:
    """Options for :func:`compile_expr`.

    ``tier``: ``"auto"`` (let alkahest choose) or one of ``KNOWN_TIERS``.
    ``expected_evals``: how many points the function will be evaluated at in bulk
    (``numpy_eval``), and ``expected_calls``: how many scalar calls ``f(...)`` it will
    get, if known. With either, ``"auto"`` picks the tier with the least predicted
    compile + run time (see :mod:`alkahest.dispatch`); with neither, the function starts
    on the interpreter and tiers up by itself as it is used.
    ``vector_math``: bulk evaluation may use the C library's vector math (glibc libmvec,
    ≤ 4 ulp) for transcendental functions; ``False`` keeps every point on libm (≤ 1 ulp).
    ``fastmath``: trade the last digits for speed. On every tier, integer powers ``x**n``
    beyond the cube become plain multiplication chains (about twice as fast where the
    arrays fit in cache; error ~n/2 ulp instead of ~0.5, negative powers overflow early);
    on the LLVM tier, LLVM may also reassociate and contract to FMA (results then differ
    from the other tiers in the last bits).

    ``dtype``: the element type bulk evaluation computes in. ``None`` (default) follows
    the inputs as NumPy does: float32 arrays (with Python numbers) give float32 results,
    computed in float32 by a float32 variant of the function made on first use; any
    float64 (or integer) array gives float64. ``"float32"`` computes in float32 whatever
    the inputs (they are converted), ``"float64"`` always in float64. Scalar calls take
    and return Python floats; with ``dtype="float32"`` they compute in float32 too.
    Accuracy in float32: see ``docs/accuracy.md``.

    ``optimize``: rewrite the expressions with ``alkahest.optimize`` before compiling:
    ``"speed"`` (rewrites that keep every bit, chosen by calibrated operation costs) or
    ``"accuracy"`` (rearrangements against cancellation, kept where measured more
    accurate; takes up to seconds). Off (None) by default: see ``docs/optimize.md``.

    LLVM tier only: ``opt_level`` (0–3) for LLVM's optimiser and code generator;
    ``cache_dir``: where compiled object code is kept
    between processes (``None``: ``$ALKAHEST_CACHE_DIR``, else ``~/.cache/alkahest/llvm``;
    ``False``: no disk cache; see ``alkahest.backends.llvm.diskcache``).

    >>> CompileConfig(tier="interpreter", expected_evals=10**6)  # doctest: +NORMALIZE_WHITESPACE
    CompileConfig(tier='interpreter', expected_evals=1000000, vector_math=True, opt_level=2, fastmath=False,
                  cache_dir=None, expected_calls=None, dtype=None, optimize=None)
    >>> CompileConfig(dtype=np.float32).dtype
    'float32'
    """

    tier: str = "auto"
    expected_evals: Optional[int] = None
    vector_math: bool = True
    opt_level: int = 2
    fastmath: bool = False
    cache_dir: Union[str, "os.PathLike[str]", bool, None] = None
    expected_calls: Optional[int] = None
    dtype: Optional[str] = None
    optimize: Optional[str] = None

    def __post_init__(self) -> None:
        if self.dtype is not None:
            object.__setattr__(self, "dtype", dtype_name(self.dtype))
        if self.optimize not in (None, "speed", "accuracy"):
            raise ConfigError(f"optimize must be None, 'speed' or 'accuracy', got {self.optimize!r}")
        if isinstance(self.tier, str) and self.tier != "auto" and self.tier not in KNOWN_TIERS:
            if any(t.device and t.name == self.tier for t in tiers.REGISTRY):
                raise ConfigError(
                    f"the {self.tier!r} tier runs on a GPU and is explicit: compile with "
                    f"alkahest.compile_cuda(exprs, vars, CudaConfig(...)); CompileConfig takes 'auto' or one of "
                    f"{', '.join(map(repr, KNOWN_TIERS))}"
                )
            raise UnknownTierError(
                f"unknown tier {self.tier!r}; choose 'auto' or one of {', '.join(map(repr, KNOWN_TIERS))}"
            )
        if not isinstance(self.tier, str):
            raise ConfigError(f"tier must be a string: 'auto' or one of {', '.join(map(repr, KNOWN_TIERS))}, got {self.tier!r}")
        for name in ("expected_evals", "expected_calls"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise ConfigError(f"{name} must be a non-negative int or None, got {v!r}")
        for name in ("vector_math", "fastmath"):
            # A string such as "false" would be true: only real booleans are flags.
            v = getattr(self, name)
            if not isinstance(v, bool):
                raise ConfigError(f"{name} must be True or False, got {v!r}")
        if not isinstance(self.opt_level, int) or isinstance(self.opt_level, bool) or not 0 <= self.opt_level <= 3:
            raise ConfigError(f"opt_level must be 0, 1, 2 or 3, got {self.opt_level!r}")
        if self.cache_dir is not None and not isinstance(self.cache_dir, (str, bool, os.PathLike)):
            raise ConfigError(f"cache_dir must be a path, False (no disk cache) or None (default), got {self.cache_dir!r}")

    @property
    def element_type(self) -> str:
        """The element type a function compiled with this config computes in."""
        return self.dtype or "float64"

    @property
    def knows_work(self) -> bool:
        """Whether the caller said how much work is coming (``auto`` then decides once)."""
        return self.expected_evals is not None or self.expected_calls is not None


#: Element types kernels compute in.
DTYPES = ("float64", "float32")


def dtype_name(value: object) -> str:
    """``value`` ("float32", ``np.float32``, ``np.dtype("float32")``, ...) as a name in
    :data:`DTYPES`, or :class:`ConfigError`."""
    try:
        name = np.dtype(value).name  # type: ignore[call-overload]
    except TypeError:
        name = None
    if name not in DTYPES or isinstance(value, bool):
        raise ConfigError(f"dtype must be None, 'float64' or 'float32', got {value!r}")
    return name


def check_available(tier: str) -> str:
    """``tier``, or :class:`TierUnavailableError` for a known tier this build lacks."""
    if tier not in AVAILABLE_TIERS:
        why = tiers.get(tier).unavailable()
        raise TierUnavailableError(
            f"the {tier!r} tier is not available in this installation of alkahest"
            + (f" ({why})" if why else "")
            + f"; available: {', '.join(map(repr, AVAILABLE_TIERS))} (or tier='auto')"
        )
    return tier


DEFAULT_CONFIG = CompileConfig()


def checked(config: object) -> CompileConfig:
    """``config`` (None: the default) if it is a :class:`CompileConfig`, else :class:`ConfigError`."""
    if config is None:
        return DEFAULT_CONFIG
    if not isinstance(config, CompileConfig):
        hint = " (write CompileConfig(**options))" if isinstance(config, dict) else ""
        raise ConfigError(f"config must be a CompileConfig or None, got {type(config).__name__}{hint}")
    return config
