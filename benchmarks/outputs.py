"""The "outputs" section: a scalar call of a function with hundreds of outputs, returning
them as a tuple, as one NumPy array (outputs compiled as an array), or into ``out=``,
against symengine's ``Lambdify(backend="llvm")`` on the same SymPy model (the equations
of motion of a pendulum on a cart, 8 links: 342 outputs over 37 inputs)."""

from __future__ import annotations

import sys
import timeit
from typing import Any, Dict, List

import numpy as np

import alkahest as ak
from models import pendulum_on_cart


def rows(links: int = 8) -> List[Dict[str, Any]]:
    name, args, outputs = pendulum_on_cart(links)
    pool = ak.ExprPool()
    converted = ak.from_sympy(outputs, pool)
    syms = [ak.from_sympy(a, pool) for a in args]
    config = ak.CompileConfig(tier="llvm")
    as_tuple = ak.compile_expr(converted, syms, config, cache=False)
    as_array = ak.compile_expr(np.array(converted, dtype=object), syms, config, cache=False)
    point = list(np.random.default_rng(0).uniform(0.5, 1.5, len(args)))
    vector, buf = np.array(point), np.empty(len(outputs))
    calls = {
        "alkahest, tuple: f(*point)": lambda: as_tuple(*point),
        "alkahest, array: f(*point)": lambda: as_array(*point),
        "alkahest, array: f(vector)": lambda: as_array(vector),
        "alkahest, out=: f(vector, out=buf)": lambda: as_array(vector, out=buf),
    }
    try:
        import symengine as se

        lam = se.Lambdify(args, outputs, backend="llvm", cse=True)
        assert np.allclose(lam(point), as_array(*point))
        calls["symengine Lambdify(llvm): f(list)"] = lambda: lam(point)
        calls["symengine Lambdify(llvm): f(vector)"] = lambda: lam(vector)
    except ImportError:
        pass
    out = []
    for label, call in calls.items():
        n = 20000
        us = min(timeit.repeat(call, number=n, repeat=7)) / n * 1e6
        out.append({"model": name, "outputs": len(outputs), "call": label, "us": us})
        print(f"  outputs {name} {label:40s} {us:7.2f} us", file=sys.stderr)
    return out


def markdown(result: List[Dict[str, Any]]) -> str:
    head = f"{result[0]['model']}: {result[0]['outputs']} outputs, best of 7 repeats of 20,000 calls, LLVM tier."
    lines = ["| call | µs per call |", "|---|---:|"] + [f"| {r['call']} | {r['us']:.2f} |" for r in result]
    return head + "\n\n" + "\n".join(lines)
