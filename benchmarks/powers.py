"""The "powers" section: what accurate integer powers cost.

For each suite case whose expression has integer powers (``x**n``), the LLVM tier with
the default config (compensated powering, ~0.5 ulp) against ``fastmath=True`` (the plain
multiplication chain, ~n/2 ulp), numexpr and numba's ``@vectorize``, one thread, in
nanoseconds per point.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Dict, List

import numpy as np

import alkahest as ak
from suite import SUITE
from timing import best_time


def has_integer_powers(tape) -> bool:
    return any(ins[0] == "fma" for ins in tape.instructions())


def rows(sizes=(10**3, 10**5, 10**6, 10**7), budget: float = 0.4) -> List[Dict[str, Any]]:
    import numexpr
    import numba

    numexpr.set_num_threads(1)
    out = []
    rng = np.random.default_rng(3)
    for case in SUITE:
        expr, vars = case.build(ak.ExprPool())
        exact = ak.compile_expr(expr, vars, ak.CompileConfig(tier="llvm"), cache=False)
        if not has_integer_powers(exact.tape):
            continue
        plain = ak.compile_expr(expr, vars, ak.CompileConfig(tier="llvm", fastmath=True), cache=False)
        ns: Dict[str, Any] = {}
        exec(case.scalar, {"math": math}, ns)
        vectorized = numba.vectorize([f"float64({', '.join(['float64'] * len(vars))})"])(ns["kernel"])
        for n in sizes:
            arrays = case.inputs(rng, n)
            local = dict(zip(case.names, arrays))
            engines = {
                "alkahest (exact powers)": lambda: ak.numpy_eval(exact, *arrays),
                "alkahest fastmath (plain chain)": lambda: ak.numpy_eval(plain, *arrays),
                "numexpr": lambda: numexpr.evaluate(case.numexpr, local_dict=local),
                "numba @vectorize": lambda: vectorized(*arrays),
            }
            for name, run in engines.items():
                sec = best_time(run, budget)
                out.append({"case": case.name, "n": n, "engine": name, "ns_per_point": sec / n * 1e9,
                            "ops": (exact if "exact" in name else plain).tape.n_ops if name.startswith("alkahest") else None})
                print(f"  powers {case.name:14s} n={n:.0e} {name:32s} {sec / n * 1e9:8.3f} ns/pt", file=sys.stderr)
    return out


def markdown(result: List[Dict[str, Any]]) -> str:
    engines = list(dict.fromkeys(r["engine"] for r in result))
    lines = ["| case | n | " + " | ".join(engines) + " | exact / fastmath |", "|---|---|" + "---:|" * (len(engines) + 1)]
    for case, n in dict.fromkeys((r["case"], r["n"]) for r in result):
        cell = {r["engine"]: r["ns_per_point"] for r in result if r["case"] == case and r["n"] == n}
        ratio = cell[engines[0]] / cell[engines[1]]
        lines.append(f"| {case} | {n:.0e} | " + " | ".join(f"{cell[e]:.3f}" for e in engines) + f" | {ratio:.2f} |")
    return "ns per point, one thread, LLVM tier for alkahest.\n\n" + "\n".join(lines)
