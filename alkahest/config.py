"""``CompileConfig``: what the caller asks of compilation, and tier resolution."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Optional, Union

from .errors import TierUnavailableError, UnknownTierError

#: Every tier alkahest knows, in order of increasing compile cost.
KNOWN_TIERS = ("interpreter", "cranelift", "llvm")

#: Tiers this installation can compile to (LLVM needs llvmlite).
AVAILABLE_TIERS = ("interpreter", "cranelift") + (("llvm",) if importlib.util.find_spec("llvmlite") else ())


@dataclass(frozen=True)
class CompileConfig:
    """Options for :func:`compile_expr`.

    ``tier``: ``"auto"`` (let alkahest choose) or one of ``KNOWN_TIERS``.
    ``expected_evals``: how many points the function will be evaluated at, if known;
    ``"auto"`` uses it to weigh compile time against run time.
    ``vector_math``: bulk evaluation may use the C library's vector math (glibc libmvec,
    ≤ 4 ulp) for transcendental functions; ``False`` keeps every point on libm (≤ 1 ulp).

    LLVM tier only: ``opt_level`` (0–3) for LLVM's optimiser and code generator;
    ``fastmath`` lets LLVM reassociate and contract to FMA (results then differ from the
    other tiers in the last bits); ``cache_dir``: where compiled object code is kept
    between processes (``None``: ``$ALKAHEST_CACHE_DIR``, else ``~/.cache/alkahest/llvm``;
    ``False``: no disk cache; see ``alkahest.backends.llvm.diskcache``).

    >>> CompileConfig(tier="interpreter", expected_evals=10**6)
    CompileConfig(tier='interpreter', expected_evals=1000000, vector_math=True, opt_level=2, fastmath=False, cache_dir=None)
    """

    tier: str = "auto"
    expected_evals: Optional[int] = None
    vector_math: bool = True
    opt_level: int = 2
    fastmath: bool = False
    cache_dir: Union[str, "os.PathLike[str]", bool, None] = None

    def __post_init__(self) -> None:
        if self.tier != "auto" and self.tier not in KNOWN_TIERS:
            raise UnknownTierError(
                f"unknown tier {self.tier!r}; choose 'auto' or one of {', '.join(map(repr, KNOWN_TIERS))}"
            )
        if self.expected_evals is not None and (
            not isinstance(self.expected_evals, int) or self.expected_evals < 0
        ):
            raise ValueError(f"expected_evals must be a non-negative int or None, got {self.expected_evals!r}")
        if not isinstance(self.opt_level, int) or isinstance(self.opt_level, bool) or not 0 <= self.opt_level <= 3:
            raise ValueError(f"opt_level must be 0, 1, 2 or 3, got {self.opt_level!r}")
        if self.cache_dir is not None and not isinstance(self.cache_dir, (str, bool, os.PathLike)):
            raise TypeError(f"cache_dir must be a path, False (no disk cache) or None (default), got {self.cache_dir!r}")

    def resolve_tier(self, n_ops: int) -> str:
        """The tier a tape of ``n_ops`` operations compiles to under this config.

        Raises :class:`TierUnavailableError` for a known tier this build lacks.
        """
        if self.tier == "auto":
            # Only the interpreter exists yet; the cost model arrives with the native tiers.
            return "interpreter"
        if self.tier not in AVAILABLE_TIERS:
            raise TierUnavailableError(
                f"the {self.tier!r} tier is not available in this installation of alkahest"
                + (" (it needs llvmlite: pip install llvmlite)" if self.tier == "llvm" else "")
                + f"; available: {', '.join(map(repr, AVAILABLE_TIERS))} (or tier='auto')"
            )
        return self.tier


DEFAULT_CONFIG = CompileConfig()
