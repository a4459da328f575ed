"""The "cse" section: tape length against ``sympy.cse`` on multibody models.

SymPy models of a pendulum on a cart (3, 8 and 12 links: equations of motion, as
``sympy.physics.mechanics`` writes them). Each row counts tape operations three ways,
all lowered by alkahest so that each counts operations alike:

* ``exact``: the model as converted (the default: every sum and product in the order
  written; hash-consing shares identical sub-expressions only);
* ``fastmath``: lowered with ``fastmath=True``, whose sums and products are regrouped so
  that common terms are computed once (``alkahest_core::nary``);
* ``sympy.cse``: SymPy's common-subexpression elimination first, its result converted.

The ratios are alkahest's tape over ``sympy.cse``'s (the large-model issue asks for at
most 1.05), and the times are conversion plus lowering.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Dict, List, Sequence

import alkahest as ak
from models import pendulum_on_cart


def _lowered(outputs, args, fastmath: bool):
    pool = ak.ExprPool()
    start = time.perf_counter()
    converted = ak.from_sympy(outputs, pool)
    syms = [ak.from_sympy(a, pool) for a in args]
    tape = ak.lower(converted, syms, fastmath=fastmath)
    return tape.n_ops, time.perf_counter() - start


def _after_sympy_cse(outputs, args):
    import sympy as sp

    start = time.perf_counter()
    replacements, reduced = sp.cse(outputs)
    pool = ak.ExprPool()
    syms = [ak.from_sympy(a, pool) for a in args]
    mapping = dict(zip(args, syms))
    for symbol, value in replacements:
        mapping[symbol] = ak.from_sympy(value, pool, symbols=mapping)
    converted = [ak.from_sympy(e, pool, symbols=mapping) for e in reduced]
    return ak.lower(converted, syms).n_ops, time.perf_counter() - start


def rows(links: Sequence[int] = (3, 8, 12)) -> List[Dict[str, Any]]:
    out = []
    for n in links:
        name, args, outputs = pendulum_on_cart(n)
        exact, exact_s = _lowered(outputs, args, False)
        fast, fast_s = _lowered(outputs, args, True)
        cse, cse_s = _after_sympy_cse(outputs, args)
        row = {"model": name, "outputs": len(outputs), "exact_ops": exact, "fastmath_ops": fast, "sympy_cse_ops": cse,
               "exact_ratio": exact / cse, "fastmath_ratio": fast / cse, "exact_s": exact_s, "fastmath_s": fast_s,
               "sympy_cse_s": cse_s}
        out.append(row)
        print(f"  cse {name}: exact {exact} ({exact / cse:.3f}), fastmath {fast} ({fast / cse:.3f}), "
              f"sympy.cse {cse}", file=sys.stderr)
    return out


def markdown(result: List[Dict[str, Any]]) -> str:
    lines = ["| model | outputs | tape ops, exact | tape ops, fastmath | tape ops after sympy.cse | exact / cse | "
             "fastmath / cse | convert + lower, fastmath (ms) | sympy.cse + convert + lower (ms) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result:
        lines.append(f"| {r['model']} | {r['outputs']} | {r['exact_ops']} | {r['fastmath_ops']} | {r['sympy_cse_ops']} | "
                     f"{r['exact_ratio']:.3f} | {r['fastmath_ratio']:.3f} | {r['fastmath_s'] * 1e3:.1f} | "
                     f"{r['sympy_cse_s'] * 1e3:.1f} |")
    return "\n".join(lines)
