"""The speed goal's regrouping, and the reference it is checked against.

``optimize(goal="speed")`` offers, beside the e-graph's extraction, the expressions with
their sums and products regrouped so that the terms they share are computed once: the
n-ary common-subexpression pass that ``fastmath=True`` runs when lowering
(``alkahest_core::nary``), read back into expressions. The e-graph extracts trees, which
duplicate a DAG's shared work; this pass works on the DAG itself, and on SymPy's
equations of motion it saves 10-16% of the operations.

Regrouping changes roundings, so the result is checked against a reference: the original
expressions evaluated operation by operation in NumPy's extended precision
(``np.longdouble``: a 64-bit significand on x86, 11 bits more than a double). That costs
milliseconds where mpmath costs seconds, which keeps the speed goal below the compile
time it precedes. It is not exact: where the original cancels more than 11 bits the
reference errs too; and where ``longdouble`` is a double (Arm, Windows) the check
degenerates to "within two bits of the original's own results".

>>> import alkahest as ak
>>> a, b, c, d = ak.ExprPool().symbols("a b c d")
>>> exprs = [a * b * c, d * (c * b)]  # b*c twice, written in two orders
>>> [str(e) for e in regrouped(exprs, [a, b, c, d])]
['a*(b*c)', 'd*(b*c)']
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from . import _native
from ._native import Expr

#: Tape operations and the expression functions that make them.
_FUNCTION = {"select": "where"}


def from_tape(tape: "_native.Tape", inputs: Sequence[Expr]) -> Optional[List[Expr]]:
    """The tape's outputs as expressions over ``inputs`` (None if it holds an operation
    expressions cannot spell, ``fma``)."""
    pool = inputs[0].pool
    values: List[Expr] = []
    for op, args, load in tape.instructions():
        if op == "input":
            values.append(inputs[load])
        elif op == "const":
            values.append(pool.constant(tape.consts[load]))
        elif op == "fma":
            return None
        else:
            values.append(_native.apply(_FUNCTION.get(op, op), *(values[a] for a in args)))
    return [values[o] for o in tape.outputs]


def regrouped(exprs: Sequence[Expr], inputs: Sequence[Expr]) -> Optional[List[Expr]]:
    """``exprs`` with the sums and products they share computed once (regrouped: other
    roundings; integer powers as plain products). None where that is not expressible."""
    return from_tape(_native.lower(list(exprs), list(inputs), fastmath=True), inputs)


def extended_values(exprs: Sequence[Expr], inputs: Sequence[Expr], points: Sequence[np.ndarray]) -> List[np.ndarray]:
    """The expressions at ``points`` (one array per input) computed in extended precision,
    operation by operation, and rounded to doubles."""
    from .optimizer import _double_op

    tape = _native.lower(list(exprs), list(inputs))
    n = len(points[0])
    values: List[np.ndarray] = []
    with np.errstate(all="ignore"):
        for op, args, load in tape.instructions():
            if op == "input":
                values.append(np.asarray(points[load], dtype=np.longdouble))
            elif op == "const":
                values.append(np.full(n, tape.consts[load], dtype=np.longdouble))
            elif op == "fma":
                a, b, c = (values[i] for i in args)
                values.append(a * b + c)
            else:
                values.append(np.asarray(_double_op(op, [values[i] for i in args]), dtype=np.longdouble))
        return [values[o].astype(np.float64) for o in tape.outputs]
