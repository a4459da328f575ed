"""``CompileConfig``: what the caller asks of compilation, and tier resolution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .errors import TierUnavailableError, UnknownTierError

#: Every tier alkahest knows, in order of increasing compile cost.
KNOWN_TIERS = ("interpreter", "cranelift", "llvm")

#: Tiers this build can compile to.
AVAILABLE_TIERS = ("interpreter", "cranelift")


@dataclass(frozen=True)
class CompileConfig:
    """Options for :func:`compile_expr`.

    ``tier``: ``"auto"`` (let alkahest choose) or one of ``KNOWN_TIERS``.
    ``expected_evals``: how many points the function will be evaluated at, if known;
    ``"auto"`` uses it to weigh compile time against run time.
    ``vector_math``: bulk evaluation may use the C library's vector math (glibc libmvec,
    ≤ 4 ulp) for transcendental functions; ``False`` keeps every point on libm (≤ 1 ulp).

    >>> CompileConfig(tier="interpreter", expected_evals=10**6)
    CompileConfig(tier='interpreter', expected_evals=1000000, vector_math=True)
    """

    tier: str = "auto"
    expected_evals: Optional[int] = None
    vector_math: bool = True

    def __post_init__(self) -> None:
        if self.tier != "auto" and self.tier not in KNOWN_TIERS:
            raise UnknownTierError(
                f"unknown tier {self.tier!r}; choose 'auto' or one of {', '.join(map(repr, KNOWN_TIERS))}"
            )
        if self.expected_evals is not None and (
            not isinstance(self.expected_evals, int) or self.expected_evals < 0
        ):
            raise ValueError(f"expected_evals must be a non-negative int or None, got {self.expected_evals!r}")

    def resolve_tier(self, n_ops: int) -> str:
        """The tier a tape of ``n_ops`` operations compiles to under this config.

        Raises :class:`TierUnavailableError` for a known tier this build lacks.
        """
        if self.tier == "auto":
            # Only the interpreter exists yet; the cost model arrives with the native tiers.
            return "interpreter"
        if self.tier not in AVAILABLE_TIERS:
            raise TierUnavailableError(
                f"the {self.tier!r} tier is not available in this build of alkahest; "
                f"available: {', '.join(map(repr, AVAILABLE_TIERS))} (or tier='auto')"
            )
        return self.tier


DEFAULT_CONFIG = CompileConfig()
