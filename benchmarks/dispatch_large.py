"""The "dispatch_large" section: auto against every fixed tier on large models.

The dispatch table's method (``dispatch.py``: fresh compile + work, best of repeats) on
the generated models of ``large.py`` (50 inputs, 100 outputs; 1,100 to 101,900
operations), in bulk at 10^3 and 10^5 points and in loops of 1, 100 and 10,000 scalar
calls, and a narrower model at 10^7 points. The large-model issue asks that
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
    n_inputs: int = 50
    n_outputs: int = 100

    @property
    def name(self) -> str:
        shape = "" if (self.n_inputs, self.n_outputs) == (50, 100) else f", {self.n_inputs} in, {self.n_outputs} out"
        return f"model {self.terms} terms{shape}"

    def build(self, pool):
        outs, xs = model(self.terms, self.n_inputs, self.n_outputs)  # its own pool: the model builds its symbols
        return outs, xs

    def inputs(self, rng, n: int):
        return [rng.uniform(-1, 1, n) for _ in range(self.n_inputs)]


def rows(terms: Sequence[int] = (200, 1000, 4000, 17000)) -> List[Dict[str, Any]]:
    """The generated models from 1,100 to 101,900 operations (50 inputs, 100 outputs) in
    bulk and in scalar loops; and at 10^7 points a model of 10 inputs and 5 outputs (150
    arrays of 10^7 doubles would take 12 GB)."""
    out = dispatch.dispatch_table([ModelCase(t) for t in terms], sizes=(1_000, 100_000), loops=(1, 100, 10_000))
    return out + dispatch.dispatch_table([ModelCase(200, 10, 5)], sizes=(10_000_000,), loops=())


def markdown(result: List[Dict[str, Any]]) -> str:
    within = sum(r["ratio"] <= WITHIN for r in result)
    worst = max(result, key=lambda r: r["ratio"])
    return (dispatch.markdown(result) + f"\n\nauto within {WITHIN}x of the best fixed tier in {within} of "
            f"{len(result)} cells; worst {worst['ratio']:.2f}x ({worst['case']}, {worst['situation']}).")
