"""The op table: every operation of the tape, as ``alkahest_core::op`` declares it.

The table is defined once, in Rust, and read here by the backends written in Python (the
LLVM and NVPTX code generators), the cost model and the tests. An operation's *class*
says how a backend computes it:

- ``arithmetic``: IEEE 754 arithmetic, correctly rounded (``add``, ..., ``fma``);
- ``exact``: exact operations without a library function (``sqrt``, ``floor``, ``min``, ...);
- ``compare`` and ``logic``: conditions, 1.0 or 0.0 (non-zero, NaN included, is true);
- ``select``: ``where(cond, a, b)``;
- ``call``: the C library function of the same name; ``vector`` says whether glibc's
  libmvec may have a vector variant of it.

>>> OPS["sin"]
Op(name='sin', arity=1, op_class='call', libm='sin', vector=True)
>>> [op.name for op in of_class("compare")]
['lt', 'le', 'gt', 'ge', 'eq', 'ne']
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple

from . import _native


class Op(NamedTuple):
    """One row of the op table."""

    name: str
    arity: int
    op_class: str
    libm: Optional[str]
    vector: bool


#: Every computing operation, in the order of ``Tape.op_count_vector()``.
TABLE: Tuple[Op, ...] = tuple(Op(*row) for row in _native.op_table())
#: The table by operation name.
OPS: Dict[str, Op] = {op.name: op for op in TABLE}
#: The classes, as the table spells them.
CLASSES: Tuple[str, ...] = ("arithmetic", "exact", "compare", "logic", "select", "call")


def of_class(op_class: str) -> Tuple[Op, ...]:
    """The operations of one class, in table order."""
    if op_class not in CLASSES:
        raise ValueError(f"unknown op class {op_class!r}; choose one of {', '.join(CLASSES)}")
    return tuple(op for op in TABLE if op.op_class == op_class)
