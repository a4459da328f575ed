"""The "dispatch_large" section: auto against every fixed tier on large models.

The dispatch table's method (``dispatch.py``: fresh compile + work, best of repeats) on
the generated models of ``large.py`` (50 inputs, 100 outputs), in bulk at 10^3 and 10^5
points and in loops of 1, 100 and 10,000 scalar calls. The large-model issue asks that
auto's total stays within 1.5x of the best fixed tier in each cell.

    python benchmarks/run.py --only dispatch_large
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

import dispatch
from large import model

WITHIN = 1.5


@dataclass(frozen=True)
class ModelCase:
    """A generated model as a dispatch case."""

    terms: int

    @property
    def name(self) -> str:
        return f"model {self.terms} terms"

    def build(self, pool):
        outs, xs = model(self.terms)  # its own pool: the model builds its symbols
        return outs, xs

    def inputs(self, rng, n: int):
        return [rng.uniform(-1, 1, n) for _ in range(50)]


def rows(terms: Sequence[int] = (200, 1000, 4000)) -> List[Dict[str, Any]]:
    return dispatch.dispatch_table([ModelCase(t) for t in terms], sizes=(1_000, 100_000), loops=(1, 100, 10_000))


def markdown(result: List[Dict[str, Any]]) -> str:
    within = sum(r["ratio"] <= WITHIN for r in result)
    worst = max(result, key=lambda r: r["ratio"])
    return (dispatch.markdown(result) + f"\n\nauto within {WITHIN}x of the best fixed tier in {within} of "
            f"{len(result)} cells; worst {worst['ratio']:.2f}x ({worst['case']}, {worst['situation']}).")
