"""The "derivatives" section: Jacobians of a SymPy model against SymPy and symengine,
the reverse-mode gradient's cost, stiff ODE solves against sympy.lambdify and symjit,
and quad with a LowLevelCallable against Python integrands.

Every engine starts from the same SymPy expressions; set-up includes differentiation
and compilation (for alkahest also the conversion from SymPy)."""

from __future__ import annotations

import math
import time
from typing import Any, Dict, List

import numpy as np
import sympy as sp

import alkahest as ak
from timing import best_time


def _ms(s) -> str:
    return "fails" if s is None else f"{s * 1e3:.2f} ms"


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def jacobian_rows(models, budget: float) -> List[Dict[str, Any]]:
    """Jacobian of every output of each model in its first 2n+2 arguments (the states)."""
    rows = []
    rng = np.random.default_rng(5)
    for name, args, outputs in models:
        states = [a for a in args if a.name[0] in "qu"]
        point = list(rng.uniform(0.5, 1.5, len(args)))
        arrays = [rng.uniform(0.5, 1.5, 10_000) for _ in args]
        engines = {}

        engines["alkahest"] = lambda: _alkahest_jacobian(args, outputs, states)
        engines["sympy jacobian + lambdify(cse)"] = lambda: sp.lambdify(args, sp.Matrix(outputs).jacobian(states), cse=True)
        try:
            import symengine as se

            engines["symengine jacobian + Lambdify(llvm, cse)"] = lambda: se.Lambdify(
                args, se.Matrix(outputs).jacobian(se.Matrix(states)), backend="llvm", cse=True)
        except ImportError:
            pass
        reference = None
        for engine, setup in engines.items():
            f, setup_s = _timed(setup)
            if engine.startswith("symengine"):
                def call(f=f):
                    return f(point)

                def batch(f=f):
                    return f(np.array(arrays).T)
            else:
                def call(f=f):
                    return f(*point)

                def batch(f=f):
                    return f(*arrays)
            J = np.asarray(call()[1] if engine == "alkahest" else call(), dtype=float).reshape(len(outputs), len(states))
            if reference is None:
                reference = J
            err = float(np.max(np.abs(J - reference) / (1 + np.abs(reference))))
            scalar_s = best_time(call, budget)
            try:
                batch_s = best_time(batch, budget)
            except ValueError:  # sympy's Matrix code cannot mix constant entries with arrays
                batch_s = None
            rows.append({"model": name, "outputs": len(outputs), "states": len(states), "engine": engine,
                         "setup_s": setup_s, "scalar_s": scalar_s, "batch_1e4_s": batch_s, "max_rel_diff": err})
            print(f"  jacobian {name} {engine:42s} setup {setup_s * 1e3:9.1f} ms  call {scalar_s * 1e6:8.2f} us  "
                  f"1e4 pts {_ms(batch_s)}", flush=True)
    return rows


def _alkahest_jacobian(args, outputs, states):
    """compile_jacobian over all arguments, the Jacobian taken in the states only."""
    converted = ak.from_sympy([*outputs, *args])
    exprs, syms = converted[: len(outputs)], converted[len(outputs):]
    return ak.compile_jacobian(exprs, syms, wrt=[syms[args.index(s)] for s in states])


def gradient_rows(budget: float) -> Dict[str, Any]:
    """A generated DAG of ~1,000 operations in 100 inputs: reverse-mode gradient size and
    the cost of value + gradient against the value alone (LLVM tier, one thread)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from test_derivatives import random_model

    pool = ak.ExprPool()
    f, xs = random_model(pool, 100, 1000, seed=1)
    grad, grad_s = _timed(lambda: ak.gradient(f, xs))
    value_ops = ak.lower(f, xs).n_ops
    both_ops = ak.lower([f] + grad, xs).n_ops
    config = ak.CompileConfig(tier="llvm")
    value_fn = ak.compile_expr(f, xs, config)
    both_fn = ak.compile_expr([f] + grad, xs, config)
    point = list(np.linspace(0.1, 0.9, 100))
    out = np.empty(101)
    arrays = [np.full(100_000, v) for v in point]
    bulk_out = np.empty((101, 100_000))
    row = {
        "value_ops": value_ops, "value_and_gradient_ops": both_ops, "gradient_build_s": grad_s,
        "value_call_s": best_time(lambda: value_fn(*point), budget),
        "value_and_gradient_call_s": best_time(lambda: both_fn(*point, out=out), budget),
        "value_1e5_s": best_time(lambda: ak.numpy_eval(value_fn, *arrays), budget),
        "value_and_gradient_1e5_s": best_time(lambda: ak.numpy_eval(both_fn, *arrays, out=bulk_out), budget),
    }
    print(f"  gradient: tape {value_ops} -> {both_ops} ops ({both_ops / value_ops:.2f}x); call "
          f"{row['value_and_gradient_call_s'] / row['value_call_s']:.2f}x; 1e5 points "
          f"{row['value_and_gradient_1e5_s'] / row['value_1e5_s']:.2f}x", flush=True)
    return row


def _robertson():
    t, y1, y2, y3, k1, k2, k3 = sp.symbols("t y1 y2 y3 k1 k2 k3")
    rhs = [-k1 * y1 + k3 * y2 * y3, k1 * y1 - k2 * y2**2 - k3 * y2 * y3, k2 * y2**2]
    return "robertson", t, [y1, y2, y3], rhs, [k1, k2, k3], (0.04, 3e7, 1e4), [1.0, 0.0, 0.0], (0.0, 1e5)


def _network(n_species=100, n_reactions=300, seed=3):
    rng = np.random.default_rng(seed)
    ys = list(sp.symbols(f"s0:{n_species}"))
    rhs = [sp.Integer(0)] * n_species
    for r in range(n_reactions):
        if r < n_species:
            reactants, products, k = (r,), ((r + 1) % n_species,), 10 ** rng.uniform(-2, 0)
        else:
            a, b, c = rng.choice(n_species, 3, replace=False)
            reactants, products, k = (a, b), (c,), 10 ** rng.uniform(-1, 3)
        rate = sp.Float(k)
        for i in reactants:
            rate = rate * ys[i]
        for i in reactants:
            rhs[i] -= rate
        for i in products:
            rhs[i] += rate
    return f"mass action {n_species} species", sp.Symbol("t"), ys, rhs, [], (), [0.01] * n_species, (0.0, 10.0)


def ode_rows() -> List[Dict[str, Any]]:
    from scipy.integrate import solve_ivp

    rows = []
    for name, t, ys, rhs, params, p, y0, span in (_robertson(), _network()):
        engines = {
            "alkahest": lambda: _alkahest_ode(t, ys, rhs, params),
            "sympy.lambdify": lambda: (sp.lambdify((t, ys, *params), rhs),
                                       sp.lambdify((t, ys, *params), sp.Matrix(rhs).jacobian(ys))),
        }
        try:
            import symjit

            engines["symjit"] = lambda: (symjit.compile_ode(t, ys, rhs, params or None),
                                         symjit.compile_jac(t, ys, rhs, params or None))
        except ImportError:
            pass
        reference = None
        for engine, setup in engines.items():
            (fun, jac), setup_s = _timed(setup)
            for method in ("BDF", "Radau"):
                def solve(fun=fun, jac=jac, method=method):
                    return solve_ivp(fun, span, y0, method=method, jac=jac, args=p, rtol=1e-6, atol=1e-10)
                sol, _ = _timed(solve)
                solve_s = min(_timed(solve)[1] for _ in range(7))
                ref = reference if reference is not None else sol.y[:, -1]
                reference = ref
                diff = float(np.max(np.abs(sol.y[:, -1] - ref) / (np.abs(ref) + 1e-10)))
                rows.append({"problem": name, "engine": engine, "method": method, "setup_s": setup_s,
                             "solve_s": solve_s, "nfev": int(sol.nfev), "njev": int(sol.njev),
                             "steps": int(sol.t.size), "rel_diff_to_alkahest": diff})
                print(f"  ode {name:26s} {engine:15s} {method:5s} setup {setup_s * 1e3:8.1f} ms  solve "
                      f"{solve_s * 1e3:8.2f} ms  nfev {sol.nfev} njev {sol.njev}", flush=True)
    return rows


def _alkahest_ode(t, ys, rhs, params):
    converted = ak.from_sympy([*rhs, t, *ys, *params])
    n = len(rhs)
    exprs, syms = converted[:n], converted[n:]
    ode = ak.compile_ode(exprs, syms[0], syms[1:1 + n], syms[1 + n:])
    return ode.fun, ode.jac


def quad_rows(budget: float) -> List[Dict[str, Any]]:
    from scipy.integrate import quad

    x, a = sp.symbols("x a")
    cases = [
        ("exp(-a x^2) cos(3x) on [0, 5]", sp.exp(-a * x**2) * sp.cos(3 * x), (0.0, 5.0), {},
         lambda x, a: math.exp(-a * x * x) * math.cos(3 * x)),
        ("sin(20x) exp(-a x)/(1+x^2) on [0, 20]", sp.sin(20 * x) * sp.exp(-a * x) / (1 + x**2), (0.0, 20.0), {"limit": 500},
         lambda x, a: math.sin(20 * x) * math.exp(-a * x) / (1 + x * x)),
        # A moment of a Gaussian-weighted polynomial: arithmetic-heavy, as most model integrands are.
        ("(1 + x/2 + ... + x^8/256)^2 exp(-a x^2) on [-4, 4]",
         sum((x / 2) ** k for k in range(9)) ** 2 * sp.exp(-a * x**2), (-4.0, 4.0), {},
         lambda x, a: (1 + x / 2 + (x / 2) ** 2 + (x / 2) ** 3 + (x / 2) ** 4 + (x / 2) ** 5 + (x / 2) ** 6 + (x / 2) ** 7
                       + (x / 2) ** 8) ** 2 * math.exp(-a * x * x)),
    ]
    rows = []
    for name, expr, (lo, hi), kw, python_fn in cases:
        e, xs, as_ = ak.from_sympy([expr, x, a])
        f = ak.compile_expr(e, [xs, as_])
        llc = f.low_level_callable()
        integrands = {"alkahest LowLevelCallable": llc, "Python (math module)": python_fn,
                      "sympy.lambdify (numpy)": sp.lambdify((x, a), expr)}
        try:  # the native reference: the same integrand as a numba C callback
            import numba
            from scipy import LowLevelCallable

            jitted = numba.njit(python_fn)

            @numba.cfunc("float64(intc, CPointer(float64))")
            def native(n, xx):
                return jitted(xx[0], xx[1])

            integrands["numba cfunc LowLevelCallable"] = LowLevelCallable(native.ctypes)
        except ImportError:
            pass
        ref = quad(python_fn, lo, hi, args=(0.7,), **kw)[0]
        neval = quad(python_fn, lo, hi, args=(0.7,), full_output=1, **kw)[2]["neval"]
        for engine, g in integrands.items():
            # Warm-up (an adaptive function tiers up on its first few thousand calls).
            for _ in range(200):
                quad(g, lo, hi, args=(0.7,), **kw)
            value = quad(g, lo, hi, args=(0.7,), **kw)[0]
            s = best_time(lambda g=g: quad(g, lo, hi, args=(0.7,), **kw), budget)
            rows.append({"integrand": name, "engine": engine, "quad_s": s, "evaluations": int(neval),
                         "rel_diff": abs(value - ref) / abs(ref), "tier": f.tier if engine.startswith("alkahest") else ""})
            print(f"  quad {name:40s} {engine:28s} {s * 1e6:9.2f} us  ({neval} evaluations)", flush=True)
    return rows


def section(models, budget: float = 0.5) -> Dict[str, Any]:
    return {"jacobian": jacobian_rows(models, budget), "gradient": gradient_rows(budget),
            "ode": ode_rows(), "quad": quad_rows(budget)}


def markdown(result: Dict[str, Any]) -> str:
    lines = ["### Jacobian of a SymPy model (values and Jacobian for alkahest, Jacobian alone for the peers)", "",
             "| model | engine | set-up | one point | 1e4 points |", "|---|---|---:|---:|---:|"]
    for r in result["jacobian"]:
        lines.append(f"| {r['model']} ({r['outputs']}x{r['states']}) | {r['engine']} | {r['setup_s'] * 1e3:.1f} ms | "
                     f"{r['scalar_s'] * 1e6:.2f} us | {_ms(r['batch_1e4_s'])} |")
    g = result["gradient"]
    lines += ["", "### Reverse mode: generated DAG, 100 inputs (LLVM tier, one thread)", "",
              "| | value | value + gradient | ratio |", "|---|---:|---:|---:|",
              f"| tape ops | {g['value_ops']} | {g['value_and_gradient_ops']} | "
              f"{g['value_and_gradient_ops'] / g['value_ops']:.2f} |",
              f"| one call | {g['value_call_s'] * 1e6:.2f} us | {g['value_and_gradient_call_s'] * 1e6:.2f} us | "
              f"{g['value_and_gradient_call_s'] / g['value_call_s']:.2f} |",
              f"| 1e5 points | {g['value_1e5_s'] * 1e3:.2f} ms | {g['value_and_gradient_1e5_s'] * 1e3:.2f} ms | "
              f"{g['value_and_gradient_1e5_s'] / g['value_1e5_s']:.2f} |"]
    lines += ["", "### Stiff ODEs with solve_ivp (rtol 1e-6, atol 1e-10; fun and jac from each engine)", "",
              "| problem | method | engine | set-up | solve | fun calls | jac calls | solve ratio (peer / alkahest) |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    ours = {(r["problem"], r["method"]): r["solve_s"] for r in result["ode"] if r["engine"] == "alkahest"}
    for r in result["ode"]:
        lines.append(f"| {r['problem']} | {r['method']} | {r['engine']} | {r['setup_s'] * 1e3:.1f} ms | "
                     f"{r['solve_s'] * 1e3:.2f} ms | {r['nfev']} | {r['njev']} | "
                     f"{r['solve_s'] / ours[(r['problem'], r['method'])]:.2f} |")
    lines += ["", "### scipy.integrate.quad", "", "| integrand | evaluations | engine | time per quad | ratio (this / alkahest) |",
              "|---|---:|---|---:|---:|"]
    llc = {r["integrand"]: r["quad_s"] for r in result["quad"] if r["engine"].startswith("alkahest")}
    for r in result["quad"]:
        lines.append(f"| {r['integrand']} | {r['evaluations']} | {r['engine']} | {r['quad_s'] * 1e6:.2f} us | "
                     f"{r['quad_s'] / llc[r['integrand']]:.1f} |")
    return "\n".join(lines)
