"""The benchmark suite: each case is an alkahest expression plus the same computation for
every peer that can express it (NumPy always; numexpr where it has the functions; a
scalar Python function over ``math`` for the per-point compilers, numba)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

import alkahest as ak


@dataclass
class Case:
    name: str
    names: Sequence[str]  # input names, in order
    build: Callable[[ak.ExprPool], Tuple[ak.Expr, List[ak.Expr]]]
    numpy: Callable[..., np.ndarray]
    numexpr: Optional[str]  # None: numexpr cannot express it
    inputs: Callable[[np.random.Generator, int], List[np.ndarray]]
    # Source of `def kernel(<names>)` computing one point with `math` (helpers may be
    # defined beside it), for numba and other per-point compilers.
    scalar: Optional[str] = None


def _uniform(*ranges):
    def make(rng, n):
        return [rng.uniform(lo, hi, n) for lo, hi in ranges]

    make.ranges = ranges  # type: ignore[attr-defined] # read by scale-out benchmarks (made on the workers)
    return make


# --- Black-Scholes with the polynomial normal CDF (Abramowitz-Stegun 26.2.17), the form
# the numexpr and numba benchmarks use, so every peer computes the same thing.
RATE, VOL = 0.02, 0.30
A1, A2, A3, A4, A5 = 0.31938153, -0.356563782, 1.781477937, -1.821255978, 1.330274429
RSQRT2PI = 0.3989422804014327


def _cnd_expr(d):
    k = 1.0 / (1.0 + 0.2316419 * ak.abs(d))
    poly = k * (A1 + k * (A2 + k * (A3 + k * (A4 + k * A5))))
    w = 1.0 - RSQRT2PI * ak.exp(-0.5 * d * d) * poly
    return ak.where(d > 0, w, 1.0 - w)


def _bs_expr(pool):
    s, k, t = pool.symbols("S K T")
    sq = VOL * ak.sqrt(t)
    d1 = (ak.log(s / k) + (RATE + 0.5 * VOL * VOL) * t) / sq
    d2 = d1 - sq
    return s * _cnd_expr(d1) - k * ak.exp(-RATE * t) * _cnd_expr(d2), [s, k, t]


def _cnd_np(d):
    k = 1.0 / (1.0 + 0.2316419 * np.abs(d))
    poly = k * (A1 + k * (A2 + k * (A3 + k * (A4 + k * A5))))
    w = 1.0 - RSQRT2PI * np.exp(-0.5 * d * d) * poly
    return np.where(d > 0, w, 1.0 - w)


def _bs_np(s, k, t):
    sq = VOL * np.sqrt(t)
    d1 = (np.log(s / k) + (RATE + 0.5 * VOL * VOL) * t) / sq
    d2 = d1 - sq
    return s * _cnd_np(d1) - k * np.exp(-RATE * t) * _cnd_np(d2)


def _bs_numexpr():
    def cnd(d):
        k = f"(1.0 / (1.0 + 0.2316419 * abs({d})))"
        poly = f"({k} * ({A1} + {k} * ({A2} + {k} * ({A3} + {k} * ({A4} + {k} * {A5})))))"
        w = f"(1.0 - {RSQRT2PI} * exp(-0.5 * ({d}) * ({d})) * {poly})"
        return f"where(({d}) > 0, {w}, 1.0 - {w})"

    sq = f"({VOL} * sqrt(T))"
    d1 = f"((log(S / K) + {RATE + 0.5 * VOL * VOL} * T) / {sq})"
    d2 = f"({d1} - {sq})"
    return f"S * {cnd(d1)} - K * exp(-{RATE} * T) * {cnd(d2)}"


_BS_SCALAR = f"""
def cnd(d):
    k = 1.0 / (1.0 + 0.2316419 * abs(d))
    poly = k * ({A1} + k * ({A2} + k * ({A3} + k * ({A4} + k * {A5}))))
    w = 1.0 - {RSQRT2PI} * math.exp(-0.5 * d * d) * poly
    return w if d > 0 else 1.0 - w


def kernel(S, K, T):
    sq = {VOL} * math.sqrt(T)
    d1 = (math.log(S / K) + {RATE + 0.5 * VOL * VOL} * T) / sq
    d2 = d1 - sq
    return S * cnd(d1) - K * math.exp(-{RATE} * T) * cnd(d2)
"""


# --- A generated DAG: each node reads the previous one and a random earlier one, so
# every node is live; values stay bounded (inputs in [-1, 1], sin/cos/tanh squash).
DAG_OPS = ["add", "sub", "mul", "sin", "cos", "tanh", "mul"]


def dag_recipe(n_nodes: int, seed: int = 0):
    """n_nodes steps; each is 1 to 3 tape operations (292 steps make 500 operations)."""
    rnd = random.Random(seed)
    recipe = []
    for i in range(n_nodes):
        prev = i + 1  # node index (0 and 1 are the inputs x, y)
        other = rnd.randrange(max(0, prev - 30), prev + 1)
        recipe.append((rnd.choice(DAG_OPS), prev, other))
    return recipe


def dag_expr(pool, n_ops: int, seed: int = 0):
    x, y = pool.symbols("x y")
    nodes = [x, y]
    for op, a, b in dag_recipe(n_ops, seed):
        u, v = nodes[a], nodes[b]
        nodes.append({"add": lambda: u + v, "sub": lambda: u - v, "mul": lambda: u * v * 0.75}.get(op, lambda: getattr(ak, op)(u + v))())
    return nodes[-1], [x, y]


def dag_numpy(n_ops: int, seed: int = 0):
    recipe = dag_recipe(n_ops, seed)

    def run(x, y):
        nodes = [x, y]
        for op, a, b in recipe:
            u, v = nodes[a], nodes[b]
            if op == "add":
                nodes.append(u + v)
            elif op == "sub":
                nodes.append(u - v)
            elif op == "mul":
                nodes.append(u * v * 0.75)
            else:
                nodes.append(getattr(np, op)(u + v))
        return nodes[-1]

    return run


def dag_scalar(n_ops: int, seed: int = 0) -> str:
    lines = ["def kernel(x, y):", "    n0 = x", "    n1 = y"]
    for k, (op, a, b) in enumerate(dag_recipe(n_ops, seed), start=2):
        rhs = {"add": f"n{a} + n{b}", "sub": f"n{a} - n{b}", "mul": f"n{a} * n{b} * 0.75"}.get(op, f"math.{op}(n{a} + n{b})")
        lines.append(f"    n{k} = {rhs}")
    lines.append(f"    return n{k}")
    return "\n".join(lines) + "\n"


def _poly(pool):
    (x,) = pool.symbols("x")
    return 0.5 * x**5 - 1.5 * x**4 + 2 * x**3 - x**2 + 3 * x - 7, [x]


SUITE = [
    Case("polynomial", ["x"], _poly,
         lambda x: 0.5 * x**5 - 1.5 * x**4 + 2 * x**3 - x**2 + 3 * x - 7,
         "0.5*x**5 - 1.5*x**4 + 2*x**3 - x**2 + 3*x - 7", _uniform((-2, 2)),
         "def kernel(x):\n    return 0.5 * x**5 - 1.5 * x**4 + 2 * x**3 - x**2 + 3 * x - 7\n"),
    Case("where", ["x"],
         lambda p: (lambda x: (ak.where(x > 0, ak.sqrt(ak.abs(x)) + ak.sin(x), 0), [x]))(p.symbol("x")),
         lambda x: np.where(x > 0, np.sqrt(np.abs(x)) + np.sin(x), 0),
         "where(x > 0, sqrt(abs(x)) + sin(x), 0)", _uniform((-3, 3)),
         "def kernel(x):\n    return math.sqrt(abs(x)) + math.sin(x) if x > 0 else 0.0\n"),
    Case("transcendental", ["x", "y"],
         lambda p: (lambda x, y: (ak.sin(x) * ak.cos(y) + ak.exp(-x * x), [x, y]))(*p.symbols("x y")),
         lambda x, y: np.sin(x) * np.cos(y) + np.exp(-x * x),
         "sin(x)*cos(y) + exp(-x*x)", _uniform((-3, 3), (-3, 3)),
         "def kernel(x, y):\n    return math.sin(x) * math.cos(y) + math.exp(-x * x)\n"),
    Case("black_scholes", ["S", "K", "T"], _bs_expr, _bs_np, _bs_numexpr(),
         _uniform((10, 50), (10, 50), (0.25, 2)), _BS_SCALAR),
    Case("lennard_jones", ["r"],
         lambda p: (lambda r: (4 * ((1 / r) ** 12 - (1 / r) ** 6), [r]))(p.symbol("r")),
         lambda r: 4 * ((1 / r) ** 12 - (1 / r) ** 6),
         "4*((1/r)**12 - (1/r)**6)", _uniform((0.8, 3)),
         "def kernel(r):\n    return 4 * ((1 / r)**12 - (1 / r)**6)\n"),
    Case("axpy", ["x", "y"],
         lambda p: (lambda x, y: (2.5 * x + y, [x, y]))(*p.symbols("x y")),
         lambda x, y: 2.5 * x + y, "2.5*x + y", _uniform((-1, 1), (-1, 1)),
         "def kernel(x, y):\n    return 2.5 * x + y\n"),
    Case("dag500", ["x", "y"], lambda p: dag_expr(p, 292), dag_numpy(292), None, _uniform((-1, 1), (-1, 1)),
         dag_scalar(292)),
]


def scalar_case(pool):
    """The scalar-call benchmark: x**2 + sin(y)."""
    x, y = pool.symbols("x y")
    return x**2 + ak.sin(y), [x, y], (lambda x, y: x**2 + math.sin(y))
