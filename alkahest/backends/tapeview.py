"""The tape and its bulk plan as typed Python objects, for the backends written in Python.

The Rust core decides everything here: the instructions (``Tape.instructions()``), the
staged plan of the native tiers' bulk loop (``Tape.plan()``, from ``alkahest_core::plan``)
and the stack budget the plan keeps to. The LLVM and NVPTX generators read this view;
they never re-derive what Rust decided.

>>> import alkahest as ak
>>> x, = ak.ExprPool().symbols("x")
>>> view = TapeView.of(ak.lower(ak.sin(x) * x, [x]), staged=True)
>>> view.instrs[1]
Instr(op='sin', args=(0,), load=-1)
>>> view.plan.stack_budget // 1024  # KiB, as alkahest_core::plan::STACK_BUDGET says
256
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union


class Instr(NamedTuple):
    """One tape instruction; instruction ``k`` defines value ``k``."""

    #: ``"input"``, ``"const"`` or an operation of the op table (``alkahest.ops``).
    op: str
    #: The values it reads (empty for inputs and constants).
    args: Tuple[int, ...]
    #: What an input or constant loads: the input's number or the constant's index in
    #: ``consts`` (-1 for operations).
    load: int

    @property
    def computes(self) -> bool:
        """False for inputs and constants."""
        return self.load < 0


def instructions(tape: Any) -> List[Instr]:
    """The tape's instructions as :class:`Instr`."""
    return list(map(Instr._make, tape.instructions()))


@dataclass(frozen=True)
class FusedStage:
    """Per point: compute ``values`` (value ids, in order) in registers."""

    values: Tuple[int, ...]


@dataclass(frozen=True)
class VectorStage:
    """Once per block: ``value = op(src)`` over the block with a vector-math routine."""

    value: int
    op: str
    src: int


Stage = Union[FusedStage, VectorStage]


@dataclass(frozen=True)
class Plan:
    """The staged bulk plan (``alkahest_core::plan::Plan``)."""

    stages: Tuple[Stage, ...]
    #: The block buffer holding each value that crosses stages (None: it does not).
    buffer_of: Tuple[Optional[int], ...]
    #: For each stage, the values it stores into their buffers.
    stores: Tuple[Tuple[int, ...], ...]
    #: Stack a native tier's bulk frame may take, in bytes (worker threads have 2 MiB).
    stack_budget: int
    #: Stage ranges ``(start, end)``, one generated function each (bounded size: code
    #: generators take superlinear time on large functions).
    functions: Tuple[Tuple[int, int], ...]
    #: Instruction ranges of the scalar entry, one function each; values read by a
    #: later chunk than their own go through ``spill_slot[value]`` of a spill area.
    scalar_chunks: Tuple[Tuple[int, int], ...]
    spill_slot: Mapping[int, int]

    @property
    def crossing_buffers(self) -> int:
        """Buffers for values that cross stages (0: one pass runs every stage)."""
        return 1 + max((b for b in self.buffer_of if b is not None), default=-1)

    @classmethod
    def of(cls, tape: Any, staged: bool) -> "Plan":
        raw = tape.plan(staged)
        stages: Tuple[Stage, ...] = tuple(
            FusedStage(tuple(s[1])) if s[0] == "fused" else VectorStage(s[1], s[2], s[3]) for s in raw["stages"]
        )
        return cls(stages, tuple(raw["buffer_of"]), tuple(map(tuple, raw["stores"])), raw["stack_budget"],
                   tuple(raw["functions"]), tuple(raw["scalar_chunks"]), raw["spill_slot"])


@dataclass(frozen=True)
class TapeView:
    """A tape as the Python backends read it."""

    n_inputs: int
    consts: Sequence[float]
    instrs: Sequence[Instr]
    outputs: Sequence[int]
    #: The stages of the bulk loop (a single fused stage when not staged).
    plan: Plan

    @classmethod
    def of(cls, tape: Any, staged: bool = False, instrs: Optional[Sequence[Instr]] = None) -> "TapeView":
        """The view of ``tape`` with the plan for ``staged`` code (``instrs``: the tape's
        instructions when the caller has them already)."""
        return cls(tape.n_inputs, tape.consts, instrs or instructions(tape), tape.outputs, Plan.of(tape, staged))

    def used_inputs(self) -> Tuple[int, ...]:
        """Inputs some instruction or output reads (the rest are never loaded)."""
        used = {a for ins in self.instrs for a in ins.args if a < self.n_inputs}
        used.update(o for o in self.outputs if o < self.n_inputs)
        return tuple(sorted(used))
