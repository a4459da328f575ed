"""The front doors against the tools users would otherwise keep: SymPy models through
``alkahest.lambdify`` against ``sympy.lambdify`` (NumPy), symengine's
``Lambdify(backend="llvm", cse=True)`` and symjit's ``compile_func``; expression strings
through ``alkahest.evaluate`` against ``numexpr.evaluate``. One thread everywhere.

    python benchmarks/run.py --only sympy     # set-up, scalar call, 1e5-point batch
    python benchmarks/run.py --only strings   # the suite at 1e6 points
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

import alkahest as ak
from alkahest.dispatch import wait_for_tier_ups
from timing import best_time

BATCH = 100_000
STEADY_S = 2.0  # seconds of use before a steady-state timing


def _run_for(fn: Callable[[], Any], seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        fn()


def _engines(args, outputs) -> Dict[str, Tuple[Callable[[], Any], Callable, Callable]]:
    """name -> (set up, scalar call(f, values), batch call(f, arrays))."""
    import sympy as sp

    column = sp.Matrix(outputs)
    engines = {
        "alkahest (auto)": (lambda: ak.lambdify(args, column),
                            lambda f, v: f(*v), lambda f, a: f(*a)),
        "alkahest (llvm)": (lambda: ak.lambdify(args, column, config=ak.CompileConfig(tier="llvm", cache_dir=False)),
                            lambda f, v: f(*v), lambda f, a: f(*a)),
        "sympy.lambdify": (lambda: sp.lambdify(args, outputs, modules="numpy"),
                           lambda f, v: f(*v), lambda f, a: f(*a)),
    }
    try:
        import symengine as se

        engines["symengine llvm"] = (lambda: se.Lambdify(args, outputs, backend="llvm", cse=True),
                                     lambda f, v: f(v), lambda f, a: f(a))
    except ImportError:
        pass
    try:
        import symjit

        engines["symjit"] = (lambda: symjit.compile_func(args, outputs, use_threads=False),
                             lambda f, v: f(*v), lambda f, a: f(*a))
    except ImportError:
        pass
    return engines


def _flat(result, n_out: int, points: int) -> np.ndarray:
    """Any engine's result as an (outputs, points) array, for checking."""
    if isinstance(result, list):
        return np.array([np.broadcast_to(np.asarray(r, dtype=float), (points,)) for r in result])
    a = np.asarray(result, dtype=float)
    if a.ndim >= 2 and a.shape[0] == points and a.shape[-1] == n_out and points != n_out:  # symengine: (points, outputs)
        return a.T
    return a.reshape(n_out, points)


def sympy_section(models, budget: float = 0.5) -> List[Dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(11)
    for name, args, outputs in models:
        from models import tree_nodes

        nodes = tree_nodes(outputs)
        values = [float(v) for v in rng.uniform(0.5, 1.5, len(args))]
        arrays = [rng.uniform(0.5, 1.5, BATCH) for _ in args]
        stacked = np.stack(arrays, axis=-1)  # symengine's layout, made outside the timing
        reference: Optional[np.ndarray] = None
        for engine, (setup, scalar, batch) in _engines(args, outputs).items():
            row: Dict[str, Any] = {"model": name, "nodes": nodes, "outputs": len(outputs), "engine": engine}
            try:
                t0 = time.perf_counter()
                f = setup()
                row["setup_s"] = time.perf_counter() - t0
                data = stacked if engine.startswith("symengine") else arrays
                t0 = time.perf_counter()
                got = _flat(batch(f, data), len(outputs), BATCH)
                row["first_batch_s"] = time.perf_counter() - t0
                if reference is None:
                    reference = got
                err = float(np.nanmax(np.abs(got - reference) / np.maximum(np.abs(reference), 1.0)))
                if not err <= 1e-9:
                    raise AssertionError(f"results differ from the first engine's by {err:.3g}")
                # Steady state: the work of a long run first (an adaptive function tiers up
                # as it is used), then the best of repeats.
                _run_for(lambda: scalar(f, values), STEADY_S / 2)
                row["scalar_s"] = best_time(lambda: scalar(f, values), budget)
                _run_for(lambda: batch(f, data), STEADY_S)
                wait_for_tier_ups(timeout=60)
                row["batch_s"] = best_time(lambda: batch(f, data), budget)
                if engine.startswith("alkahest"):
                    row["tier"] = f.compiled.tier
            except Exception as e:  # noqa: BLE001 - a peer failing is a result to report
                row["error"] = f"{type(e).__name__}: {str(e)[:120]}"
            rows.append(row)
            print(f"  {name:16s} {engine:18s} " + "  ".join(
                f"{k} {v * 1e3:.3f} ms" if k.endswith("_s") else f"{k} {v}" for k, v in row.items()
                if k not in ("model", "engine", "nodes", "outputs")), file=sys.stderr)
    return rows


def conversion_rate(model) -> Dict[str, float]:
    """Nodes per second of ``from_sympy`` alone (tree nodes of the SymPy input)."""
    from models import tree_nodes

    name, args, outputs = model
    nodes = tree_nodes(outputs)
    t0 = time.perf_counter()
    ak.from_sympy(outputs)
    seconds = time.perf_counter() - t0
    return {"model": name, "nodes": nodes, "seconds": seconds, "nodes_per_s": nodes / seconds}


def sympy_markdown(rows, rates) -> str:
    lines = ["Alkahest rows name the tier the function ended on (after the timing loops; auto tiers up as it runs, "
             "and a tier that cannot compile a function falls back).", "",
             "Set-up is conversion + compile; the first batch call may compile more (adaptive tier-up); scalar "
             "and batch times are steady state, after 1 s and 2 s of such calls.", "",
             "| model | tree nodes | outputs | engine | set-up (ms) | first batch (ms) | scalar call (us) | "
             "1e5-point batch (ms) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            cells = [f"failed: {r['error']}", "—", "—", "—"]
        else:
            tier = f" ({r['tier']})" if "tier" in r else ""
            cells = [f"{r['setup_s'] * 1e3:.1f}", f"{r['first_batch_s'] * 1e3:.1f}", f"{r['scalar_s'] * 1e6:.2f}",
                     f"{r['batch_s'] * 1e3:.2f}{tier}"]
        lines.append(f"| {r['model']} | {r['nodes']} | {r['outputs']} | {r['engine']} | " + " | ".join(cells) + " |")
    lines += ["", "Ratios, peer / alkahest (auto), the default configuration (> 1: alkahest is faster):", "",
              "| model | peer | set-up | scalar call | batch |", "|---|---|---|---|---|"]
    by_model: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for r in rows:
        by_model.setdefault(r["model"], {})[r["engine"]] = r
    for model, engines in by_model.items():
        auto = engines.get("alkahest (auto)", {})
        for name, r in engines.items():
            if name.startswith("alkahest"):
                continue
            if "error" in r:
                lines.append(f"| {model} | {name} | failed | failed | failed |")
                continue
            ratio = [_ratio(r.get(k), auto.get(k)) for k in ("setup_s", "scalar_s", "batch_s")]
            lines.append(f"| {model} | {name} | " + " | ".join(ratio) + " |")
    if rates:
        lines += ["", "| model | tree nodes | from_sympy (ms) | nodes per second |", "|---|---|---|---|"]
        for r in rates:
            lines.append(f"| {r['model']} | {r['nodes']} | {r['seconds'] * 1e3:.1f} | {r['nodes_per_s']:,.0f} |")
    return "\n".join(lines)


def _ratio(a, b) -> str:
    return f"{a / b:.2f}" if a and b else "—"


def strings_section(cases, n: int = 10**6, budget: float = 0.5) -> List[Dict[str, Any]]:
    """``alkahest.evaluate`` against ``numexpr.evaluate`` (one thread) on the suite's
    expression strings, in steady state (the first calls compile and tier up)."""
    import numexpr

    numexpr.set_num_threads(1)
    rng = np.random.default_rng(5)
    rows = []
    for case in cases:
        if case.numexpr is None:
            continue
        env = dict(zip(case.names, case.inputs(rng, n)))
        want = numexpr.evaluate(case.numexpr, local_dict=env)
        got = ak.evaluate(case.numexpr, local_dict=env)
        err = float(np.nanmax(np.abs(got - want) / np.maximum(np.abs(want), 1.0)))
        assert err <= 1e-12 and got.dtype == want.dtype, (case.name, err)
        for _ in range(3):
            ak.evaluate(case.numexpr, local_dict=env)
        wait_for_tier_ups(timeout=60)
        t_ne = best_time(lambda: numexpr.evaluate(case.numexpr, local_dict=env), budget)
        t_ak = best_time(lambda: ak.evaluate(case.numexpr, local_dict=env), budget)
        rows.append({"case": case.name, "n": n, "numexpr_s": t_ne, "alkahest_s": t_ak})
        print(f"  {case.name:15s} numexpr {t_ne * 1e3:.3f} ms  alkahest {t_ak * 1e3:.3f} ms", file=sys.stderr)
    return rows


def strings_markdown(rows) -> str:
    lines = ["| case | n | numexpr.evaluate (ms) | alkahest.evaluate (ms) | numexpr / alkahest |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['n']:.0e} | {r['numexpr_s'] * 1e3:.3f} | {r['alkahest_s'] * 1e3:.3f} | "
                     f"{r['numexpr_s'] / r['alkahest_s']:.2f} |")
    return "\n".join(lines)
