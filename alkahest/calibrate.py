"""Measures the cost model's constants on this machine: ``python -m alkahest.calibrate``.

Writes a calibration file (default ``~/.cache/alkahest/calibration.json``, see
:mod:`alkahest.costmodel`) that later processes read, so ``tier="auto"`` decides with
this machine's numbers. It takes well under a minute:

* **Compile time** of each tier (the LLVM tier at each opt level) on expressions of
  1 to ~5,000 operations and wide ones (64 inputs, 64 outputs, a 48-in/96-out model),
  fitted to ``base + per_op · ops + per_call · vector calls + per_input · inputs +
  per_output · outputs``.
* **Bulk time per point** (``numpy_eval`` on one thread, with and without vector math):
  one expression per operation kind (four uses of it plus the arithmetic around them)
  and a few arithmetic frames, solved for a cost per operation by least squares.
* **Scalar call time**: the same expressions timed call by call in Rust, plus the cost of
  the Python call itself and of each argument and result (wide frames of 64 of them).
* **float32 ratios**: bulk time in float32 over float64 on every third expression, in
  cache and at ``N_LARGE`` points (geometric means): how much a float32 function's
  per-point costs shrink on each tier.

Options: ``--output PATH``, ``--quick`` (fewer repeats, for tests), ``--print``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _native, ops
from . import tiers
from .config import AVAILABLE_TIERS, KNOWN_TIERS, CompileConfig
from .costmodel import FORMAT, CostModel, Features, user_path

N_POINTS = 1 << 14  # per-operation costs: arrays that stay in cache
N_LARGE = 1 << 20  # memory-bound sizes: where the tiers' per-point costs drift apart
# Uses of the measured operation per expression: few enough that the LLVM tier fuses
# them in one loop (more calls run in stages), as in most expressions people write.
ONE = 4
# Inputs or outputs of the wide frames.
WIDE = 64

# One expression per operation of the op table; add and mul are measured by the frames
# (every expression sums its terms), select and fma by their own expressions below.
UNARY = [op.name for op in ops.TABLE if op.arity == 1]
BINARY = [op.name for op in ops.TABLE if op.arity == 2 and op.name not in ("add", "mul")]
# Input ranges that keep every use in its function's domain and off slow paths.
DOMAIN = {"acosh": (1.2, 3.0), "pow": (0.5, 2.0)}
DEFAULT_DOMAIN = (0.1, 0.8)


class Expression:
    """One measured expression: outputs over symbols, inputs drawn from a range."""

    def __init__(self, name: str, outputs, symbols, domain: Tuple[float, float] = DEFAULT_DOMAIN):
        self.name, self.outputs, self.symbols, self.domain = name, outputs, symbols, domain
        self.tape = _native.lower(outputs, symbols)
        self.features = Features.of(self.tape)
        self.names = [s.name for s in symbols]


def expressions(pool) -> List[Expression]:
    """The calibration set: arithmetic frames, one expression per operation kind, DAGs."""
    x, y, z, w = pool.symbols("x y z w")
    wide = list(pool.symbols(" ".join(f"v{k}" for k in range(WIDE))))
    scale = [1.0 + (k + 1) / 64 for k in range(ONE)]

    def total(terms):
        acc = terms[0]
        for t in terms[1:]:
            acc = acc + t
        return acc

    out = [
        Expression("frame: x*a", [x * 1.5], [x]),
        Expression("frame: sum 8", [total([x * a for a in scale])], [x]),
        Expression("frame: sum 32", [total([x * (1.0 + k / 128) for k in range(1, 33)])], [x]),
        Expression("frame: 4 inputs", [x + y + z + w], [x, y, z, w]),
        Expression("frame: 4 outputs", [x * 1.5, x * 2.5, x * 3.5, x * 4.5], [x]),
        # Wide functions (models of many inputs and outputs): what each input and output
        # costs, a call's arguments and results included.
        Expression("frame: 64 inputs", [total(wide)], wide),
        Expression("frame: 64 outputs", [x * (1.0 + k / 64) for k in range(WIDE)], [x]),
        Expression("frame: mul chain", [_chain(x, y, 16, lambda a, b: a * b)], [x, y], (0.9, 1.1)),
        Expression("frame: add chain", [_chain(x, y, 16, lambda a, b: a + b)], [x, y]),
        # Integer powers: multiplications, negations and the fma that compensates them.
        Expression("fma", [total([x ** (17 + k) for k in range(ONE)])], [x]),
        Expression("select", [total([_native.apply("where", x * a - 0.5, x * a, y) for a in scale])], [x, y]),
    ]
    for op in UNARY:
        out.append(Expression(op, [total([_native.apply(op, x * a) for a in scale])], [x], DOMAIN.get(op, DEFAULT_DOMAIN)))
    for op in BINARY:
        out.append(Expression(op, [total([_native.apply(op, x * a, y) for a in scale])], [x, y], DOMAIN.get(op, DEFAULT_DOMAIN)))
    return out


def _chain(x, y, n, op):
    t = x
    for _ in range(n):
        t = op(t, y)
    return t


def dags(pool, sizes: Sequence[int], with_calls: bool, seed: int = 7) -> List[Expression]:
    """Random DAGs of about ``sizes`` operations (arithmetic, and a share of function
    calls when ``with_calls``) for the compile-time fit."""
    rng = np.random.default_rng(seed)
    x, y = pool.symbols("x y")
    out = []
    for size in sizes:
        nodes = [x, y]
        for k in range(size):
            a, b = nodes[-1 - int(rng.integers(0, min(4, len(nodes))))], nodes[int(rng.integers(0, len(nodes)))]
            r = rng.random()
            if with_calls and r < 0.25:
                node = _native.apply(["sin", "exp", "log1p", "cos"][k % 4], a * 0.5)
            elif r < 0.6:
                node = a * b + (1.0 + k / size)
            else:
                node = a - b * 0.75
            nodes.append(node)
        result = nodes[-1]
        for n in nodes[-8:-1]:
            result = result + n
        out.append(Expression(f"dag {size}{' calls' if with_calls else ''}", [result], [x, y], (0.1, 0.5)))
    return out


def wide_model(pool, n_inputs: int = 48, n_outputs: int = 96, terms: int = 1, seed: int = 3) -> Expression:
    """A model of many inputs and outputs: each output a sum of ``terms`` products of a
    sine or cosine and two inputs, plus a scaled input (~6 operations a term), as
    equations of motion and networks look. One term each (~600 operations) for the
    compile-time fit; more for ``scalar.large``."""
    rng = np.random.default_rng(seed)
    xs = list(pool.symbols(" ".join(f"m{k}" for k in range(n_inputs))))
    outs = []
    for k in range(n_outputs):
        acc = None
        for j in range(terms):
            a, b, c = (xs[int(i)] for i in rng.integers(0, n_inputs, 3))
            fn = "sin" if j % 2 == 0 else "cos"
            term = _native.apply(fn, a + (0.25 + j / 64)) * b * c * (1.5 - j / 128)
            acc = term if acc is None else acc + term
        outs.append(acc + xs[k % n_inputs] * (0.5 + k / n_outputs))
    return Expression(f"wide model{'' if terms == 1 else f' {terms} terms'}", outs, xs)


def _best(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _compile(e: Expression, tier: str, vector_math: bool = True, opt_level: int = 2, cache_dir=False,
             dtype: str = "float64"):
    """The function and the seconds from expression to callable (lowering included)."""
    from .api import compile_expr

    config = CompileConfig(tier=tier, vector_math=vector_math, opt_level=opt_level, cache_dir=cache_dir, dtype=dtype)
    t0 = time.perf_counter()
    f = compile_expr(e.outputs, e.symbols, config, cache=False)
    return f, time.perf_counter() - t0


def _arrays(e: Expression, n: int) -> List[np.ndarray]:
    lo, hi = e.domain
    return [np.linspace(lo, hi, n) + 0.001 * i for i in range(len(e.symbols))]


def _fit(rows: List[Dict[str, float]], times: List[float], keys: Sequence[str]) -> Dict[str, float]:
    """Least-squares costs for ``keys`` (relative errors weighted alike), clipped at 0."""
    a = np.array([[r.get(k, 0.0) for k in keys] for r in rows], dtype=float)
    t = np.array(times, dtype=float)
    weight = 1.0 / np.maximum(t, 1e-12)
    coef, *_ = np.linalg.lstsq(a * weight[:, None], t * weight, rcond=None)
    return {k: max(0.0, float(c)) for k, c in zip(keys, coef)}


def _op_rows(exprs: Sequence[Expression]) -> List[Dict[str, float]]:
    rows = []
    for e in exprs:
        f = e.features
        row = {"point": 1.0, "input": float(f.n_inputs), "output": float(f.n_outputs)}
        row.update({op: float(c) for op, c in f.counts.items()})
        rows.append(row)
    return rows


def _with_default(ops: Dict[str, float]) -> Dict[str, float]:
    ops = dict(ops)
    ops["default"] = float(np.median([v for v in ops.values()])) if ops else 0.0
    return ops


def measure_bulk(exprs: Sequence[Expression], tier: str, vector_math: bool, repeats: int) -> Dict[str, Any]:
    from .batch import numpy_eval

    times, kept = [], []
    call = float("inf")
    for e in exprs:
        f, _ = _compile(e, tier, vector_math)
        arrays = _arrays(e, N_POINTS)
        small = [a[:1] for a in arrays]
        numpy_eval(f, *arrays)  # warm
        call = min(call, _best(functools.partial(numpy_eval, f, *small), repeats * 4))
        times.append(max(_best(functools.partial(numpy_eval, f, *arrays), repeats) - call, 0.0) / N_POINTS)
        kept.append(e)
    rows = _op_rows(kept)
    keys = sorted({k for r in rows for k in r})
    costs = _fit(rows, times, keys)
    base = {k: costs.pop(k) for k in ("point", "input", "output")}
    return {"call": call, **base, "ops": _with_default(costs)}


def measure_large(exprs: Sequence[Expression], tier: str, small: Dict[str, Any], repeats: int) -> Dict[str, float]:
    """Per-point costs at ``N_LARGE`` points: ``scale`` times the small-size operation
    costs plus per-point, per-input and per-output terms (memory traffic), fitted."""
    from .batch import numpy_eval

    rows, times = [], []
    ops = small["ops"]
    for e in exprs:
        f, _ = _compile(e, tier, True)
        arrays = _arrays(e, N_LARGE)
        numpy_eval(f, *arrays)
        # Fresh outputs, as numpy_eval makes them: page faults are part of the cost.
        times.append(max(_best(functools.partial(numpy_eval, f, *arrays), repeats) - small["call"], 0.0) / N_LARGE)
        feats = e.features
        op_sum = sum(c * ops.get(op, ops["default"]) for op, c in feats.counts.items())
        rows.append({"scale": op_sum, "point": 1.0, "input": float(feats.n_inputs), "output": float(feats.n_outputs)})
    return {"n": N_LARGE, **_fit(rows, times, ("scale", "point", "input", "output"))}


def measure_float32(exprs: Sequence[Expression], tier: str, repeats: int, large: Sequence[Expression]) -> Dict[str, float]:
    """float32 bulk time over float64 bulk time on ``tier``: the geometric mean over
    ``exprs`` at ``N_POINTS`` (``point``) and over ``large`` at ``N_LARGE`` (``large``)."""
    from .batch import numpy_eval

    def ratios(chosen: Sequence[Expression], n: int) -> float:
        logs = []
        for e in chosen:
            times = []
            for dtype in ("float64", "float32"):
                f, _ = _compile(e, tier, dtype=dtype)
                arrays = [a.astype(dtype) for a in _arrays(e, n)]
                numpy_eval(f, *arrays)
                times.append(_best(functools.partial(numpy_eval, f, *arrays), repeats))
            logs.append(np.log(max(times[1], 1e-12) / max(times[0], 1e-12)))
        return float(np.exp(np.mean(logs))) if logs else 1.0

    return {"point": ratios(exprs, N_POINTS), "large": ratios(large, N_LARGE)}


def measure_scalar(exprs: Sequence[Expression], tier: str, repeats: int, python_call: float,
                   python_io: Dict[str, float]) -> Dict[str, object]:
    times = []
    for e in exprs:
        f, _ = _compile(e, tier)
        point = [float(a[N_POINTS // 3]) for a in _arrays(e, N_POINTS)]
        reps = 2000
        times.append(min(f._time_eval(point, reps) for _ in range(repeats)))
    rows = _op_rows(exprs)
    keys = sorted({k for r in rows for k in r})
    costs = _fit(rows, times, keys)
    kernel_base = costs.pop("point")
    # Arguments and results pass through Python objects: ~10 ns each, a third of a call
    # of a 300-output function. (Timed in Rust above, so the Python side is added here.)
    io = {k: costs.pop(k) + python_io[k] for k in ("input", "output")}
    return {"call": python_call + kernel_base, "kernel_base": kernel_base, **io, "ops": _with_default(costs)}


#: Terms per output of the model whose scalar call calibrates large functions
#: (``scalar.large``): 96 outputs of 80 terms, ~46,000 operations.
LARGE_SCALAR_TERMS = 80


def measure_large_call(e: Expression, tier: str, scalar: Dict[str, Any], repeats: int) -> float:
    """Seconds of one scalar call of ``e``, a tape of tens of thousands of operations, as
    ``scalar`` counts a call (the kernel timed in Rust plus the Python call)."""
    f, _ = _compile(e, tier)
    point = [float(a[N_POINTS // 3]) for a in _arrays(e, N_POINTS)]
    return min(f._time_eval(point, 20) for _ in range(repeats)) + scalar["call"] - scalar["kernel_base"]


def python_call_overhead(pool, repeats: int) -> float:
    """Seconds a scalar call spends outside the kernel (argument handling, the Python call)."""
    x = pool.symbol("x")
    e = Expression("call", [x * 1.5], [x])
    f, _ = _compile(e, tiers.FLOOR.name)
    n = 20000

    def loop():
        for _ in range(n):
            f(0.5)

    per_call = _best(loop, repeats) / n
    return max(0.0, per_call - f._time_eval([0.5], n))


def python_io_overhead(exprs: Sequence[Expression], repeats: int, python_call: float) -> Dict[str, float]:
    """Seconds a scalar call spends outside the kernel per argument and per result beyond
    the first (Python floats in, a tuple of floats out), from the wide frames."""
    out = {}
    for key, name in (("input", "frame: 64 inputs"), ("output", "frame: 64 outputs")):
        e = next(e for e in exprs if e.name == name)
        f, _ = _compile(e, tiers.FLOOR.name)
        point = [0.5] * len(e.symbols)
        n = 5000

        def loop(f=f, point=point, n=n):
            for _ in range(n):
                f(*point)

        outside = _best(loop, repeats) / n - f._time_eval(point, n)
        out[key] = max(0.0, (outside - python_call) / (WIDE - 1))
    return out


def measure_compile(exprs: Sequence[Expression], tier: str, opt_level: int, repeats: int,
                    samples: Optional[list] = None) -> Dict[str, float]:
    """Fitted compile-time constants; each measurement ``[ops, vector calls, seconds]``
    is appended to ``samples``."""
    rows, times = [], []
    for e in exprs:
        f = e.features
        # Large tapes compile for long enough that two runs settle their time.
        best = min(_compile(e, tier, opt_level=opt_level)[1] for _ in range(repeats if f.n_ops <= 1000 else 2))
        rows.append({"base": 1.0, "per_op": float(f.n_ops), "per_call": float(f.n_vector_calls),
                     "per_input": float(f.n_inputs), "per_output": float(f.n_outputs)})
        times.append(best)
        if samples is not None:
            samples.append([f.n_ops, f.n_vector_calls, best])
    return _fit(rows, times, ("base", "per_op", "per_call", "per_input", "per_output"))


def measure_disk_cache(exprs: Sequence[Expression], tier: str, repeats: int) -> Dict[str, float]:
    """``tier``'s compile time when its disk cache has the code (fit like compile)."""
    rows, times = [], []
    with tempfile.TemporaryDirectory(prefix="alkahest-calibrate-") as tmp:
        for e in exprs:
            _compile(e, tier, cache_dir=tmp)  # writes the entry
            times.append(min(_compile(e, tier, cache_dir=tmp)[1] for _ in range(repeats)))
            rows.append({"base": 1.0, "per_op": float(e.features.n_ops), "per_call": float(e.features.n_vector_calls)})
    return _fit(rows, times, ("base", "per_op", "per_call"))


def tier_startup(tier: str, repeats: int) -> float:
    """Seconds the first compile of a process on ``tier`` spends starting it (for LLVM:
    importing llvmlite, initialising the target, registering routines), from fresh
    processes."""
    code = (
        "import time, alkahest as ak\n"
        f"p = ak.ExprPool(); x = p.symbol('x'); c = ak.CompileConfig(tier={tier!r}, cache_dir=False)\n"
        "t0 = time.perf_counter(); ak.compile_expr(x * 1.5, [x], c, cache=False); t1 = time.perf_counter()\n"
        "ak.compile_expr(x * 2.5, [x], c, cache=False); t2 = time.perf_counter()\n"
        "print((t1 - t0) - (t2 - t1))\n"
    )
    import subprocess

    runs = []
    for _ in range(max(1, repeats // 2)):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        if out.returncode == 0:
            runs.append(float(out.stdout.strip().splitlines()[-1]))
    return max(0.0, min(runs)) if runs else 0.0


def calibrate(quick: bool = False, log: Callable[[str], None] = lambda s: None) -> dict:
    """Measures every constant of the cost model; returns the calibration as a dict."""
    start = time.perf_counter()
    repeats = 2 if quick else 9
    pool = _native_pool()
    exprs = expressions(pool)
    # Up to thousands of operations: large models' compile time per operation differs
    # from a small function's (cache misses in every pass), and compile time is linear
    # in the tape beyond that (functions of bounded size), so the fit extrapolates.
    sizes = (1, 40, 160) if quick else (1, 40, 160, 400, 1500, 5000)
    # Wide functions too: each input and output costs code in both entries (loads,
    # stores, gathers, pointers), which a model of 50 inputs and 100 outputs pays.
    wide = [e for e in exprs if e.name in ("frame: 64 inputs", "frame: 64 outputs")] + [wide_model(pool)]
    compile_set = dags(pool, sizes, False) + dags(pool, sizes, True) + wide
    large_scalar = wide_model(pool, terms=LARGE_SCALAR_TERMS)
    large_calls: Dict[str, float] = {}
    usable = [t for t in KNOWN_TIERS if t in AVAILABLE_TIERS]
    for t in usable:  # first compiles pay one-off start-up costs (LLVM initialisation)
        _compile(exprs[0], t)
    python_call = python_call_overhead(pool, repeats)
    python_io = python_io_overhead(exprs, repeats, python_call)
    vector_ops = set(_native.vector_math_functions())
    libm_exprs = [e for e in exprs if e.name.startswith("frame") or e.name in vector_ops]
    result: dict = {"format": FORMAT, "compile": {}, "scalar": {}, "bulk_vector_math": {}, "bulk_libm": {},
                    "float32": {}, "samples": {"compile": {}}}
    for t in usable:
        log(f"{t}: compile")
        samples: List[float] = []
        result["samples"]["compile"][t] = samples
        tier = tiers.get(t)
        if tier.per_opt_level:
            result["compile"][t] = {
                str(level): measure_compile(compile_set if level == 2 else compile_set[::2], t, level, repeats,
                                            samples if level == 2 else None)
                for level in range(4)
            }
            result["compile"][t]["startup"] = tier_startup(t, repeats)
            if tier.disk_cached is not None:
                result["compile"][t]["cached"] = measure_disk_cache(compile_set[::2], t, repeats)
        else:
            result["compile"][t] = measure_compile(compile_set, t, 2, repeats, samples)
        log(f"{t}: bulk")
        vm = measure_bulk(exprs, t, True, repeats)
        vm["large"] = measure_large(exprs[:: 2 if quick else 1], t, vm, max(2, repeats // 2))
        result["bulk_vector_math"][t] = vm
        libm = measure_bulk(libm_exprs, t, False, repeats)
        result["bulk_libm"][t] = {**libm, "ops": _with_default({**vm["ops"], **libm["ops"]}), "large": vm["large"]}
        log(f"{t}: float32")
        result["float32"][t] = measure_float32(exprs[::3], t, max(2, repeats // 2), exprs[:: 12 if quick else 6])
        log(f"{t}: scalar")
        result["scalar"][t] = measure_scalar(exprs, t, repeats, python_call, python_io)
        if not tier.per_opt_level and not quick:
            # (LLVM would take seconds to compile it; its calls are predicted without.)
            large_calls[t] = measure_large_call(large_scalar, t, result["scalar"][t], 2)
    _fill_missing_tiers(result)
    # How much more those calls took than the small expressions' costs predict: their
    # code and values no longer stay in the caches between calls.
    small_costs = CostModel(result, "<new calibration>")
    for t, seconds in large_calls.items():
        predicted = small_costs.predict(large_scalar.features, t).call_s
        result["scalar"][t]["large"] = {"ops": float(large_scalar.features.n_ops), "scale": max(1.0, seconds / predicted)}
    result["machine"] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "vector_math_isa": _native.vector_math_isa(),
        "python": platform.python_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.perf_counter() - start, 2),
        "quick": quick,
    }
    CostModel(result, "<new calibration>")  # the file must be one the model accepts
    return result


def _native_pool():
    from ._native import ExprPool

    return ExprPool()


def _fill_missing_tiers(result: dict) -> None:
    """A tier this installation lacks (LLVM without llvmlite) gets costs it never wins with."""
    for section in ("compile", "scalar", "bulk_vector_math", "bulk_libm", "float32"):
        for t in KNOWN_TIERS:
            if t in result[section]:
                continue
            if section == "compile":
                entry = {"base": 1e3, "per_op": 0.0, "per_call": 0.0}
                per_level = tiers.get(t).per_opt_level
                result[section][t] = {**{str(level): entry for level in range(4)}, "startup": 0.0} if per_level else entry
            else:
                result[section][t] = result[section][tiers.FLOOR.name]


def write(calibration: dict, path: Path) -> None:
    """Writes atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".calibration-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(calibration, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def markdown(cal: dict) -> str:
    """The calibration as tables (docs/dispatch.md shows the shipped one)."""
    present = [t for t in KNOWN_TIERS if t in cal["compile"]]
    us, ns = 1e6, 1e9
    out = ["**Compile time, expression to callable** (fit: base + per_op · ops + per_call · vector calls + "
           "per_input · inputs + per_output · outputs; LLVM at opt_level 2):", "",
           "| tier | base | per op | per vector call | per input | per output | measured (ops, vector calls → time) |",
           "|---|---|---|---|---|---|---|"]
    for t in present:
        c = cal["compile"][t]["2"] if tiers.get(t).per_opt_level else cal["compile"][t]
        pts = ", ".join(f"{int(o)}, {int(k)} → {sec * 1e3:.2f} ms" for o, k, sec in cal.get("samples", {}).get("compile", {}).get(t, []))
        out.append(f"| {t} | {c['base'] * us:.1f} µs | {c['per_op'] * us:.2f} µs | {c['per_call'] * us:.1f} µs | "
                   f"{c.get('per_input', 0.0) * us:.1f} µs | {c.get('per_output', 0.0) * us:.1f} µs | {pts} |")
    for t in present:
        entry = cal["compile"][t]
        if tiers.get(t).per_opt_level and "startup" in entry:
            out += ["", f"The first compile of a process on the {t} tier also starts the tier: +{entry['startup'] * 1e3:.1f} ms."]
        if tiers.get(t).per_opt_level and "cached" in entry:
            c = entry["cached"]
            out += [f"When the disk cache holds the object code, a \"compile\" on the {t} tier costs {c['base'] * 1e3:.2f} ms + "
                    f"{c['per_op'] * us:.2f} µs per op + {c['per_call'] * us:.1f} µs per vector call."]
    picks = ["add", "mul", "div", "sqrt", "select", "fma", "exp", "log", "sin", "tanh", "pow", "atan2"]
    for section, title in (("bulk_vector_math", "with vector math"), ("bulk_libm", "with libm only")):
        out += ["", f"**Bulk evaluation, ns per point, one thread, {title}** (arrays in cache; "
                "per op, and the fixed terms of each point):", "",
                "| tier | per point | per input | per output | " + " | ".join(picks) + " |",
                "|" + "---|" * (4 + len(picks))]
        for t in present:
            b = cal[section][t]
            cells = [f"{b['ops'].get(op, b['ops']['default']) * ns:.2f}" for op in picks]
            out.append(f"| {t} | {b['point'] * ns:.2f} | {b['input'] * ns:.2f} | {b['output'] * ns:.2f} | " + " | ".join(cells) + " |")
    out += ["", "**Large arrays** (2^20 points: memory traffic and page faults of the fresh output): per point = "
            "point + input · inputs + output · outputs + scale · (in-cache operation costs):", "",
            "| tier | point (ns) | input (ns) | output (ns) | scale |", "|---|---|---|---|---|"]
    for t in present:
        g = cal["bulk_vector_math"][t].get("large")
        if g:
            out.append(f"| {t} | {g['point'] * ns:.2f} | {g['input'] * ns:.2f} | {g['output'] * ns:.2f} | {g['scale']:.2f} |")
    out += ["", "**Scalar call from Python, ns** (the call itself, per argument, per result, and per op):", "",
            "| tier | call | per input | per output | " + " | ".join(picks) + " |", "|" + "---|" * (4 + len(picks))]
    for t in present:
        sc = cal["scalar"][t]
        out.append(f"| {t} | {sc['call'] * ns:.1f} | {sc.get('input', 0.0) * ns:.1f} | {sc.get('output', 0.0) * ns:.1f} | "
                   + " | ".join(f"{sc['ops'].get(op, sc['ops']['default']) * ns:.2f}" for op in picks) + " |")
    if cal.get("float32"):
        out += ["", "**float32**: bulk time in float32 over float64 (the factor on a float32 function's per-point "
                "costs):", "", "| tier | in cache | large arrays |", "|---|---|---|"]
        for t in present:
            r = cal["float32"].get(t)
            if r:
                out.append(f"| {t} | {r['point']:.2f} | {r['large']:.2f} |")
    m = cal.get("machine", {})
    out += ["", f"Measured on {m.get('processor', '?')} ({m.get('cpus', '?')} CPUs, vector math "
            f"{m.get('vector_math_isa', '?')}, Python {m.get('python', '?')}) in {m.get('seconds', '?')} s."]
    return "\n".join(out)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alkahest.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=None, help=f"where to write (default {user_path()})")
    parser.add_argument("--quick", action="store_true", help="fewer repeats: faster, noisier")
    parser.add_argument("--print", action="store_true", help="also print the calibration")
    parser.add_argument("--markdown", type=Path, metavar="FILE",
                        help="print FILE (a calibration) as tables and exit, measuring nothing")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    path = args.output or user_path()
    cal = calibrate(args.quick, log=lambda s: print(f"  {s}", file=sys.stderr))
    write(cal, path)
    if args.print:
        print(json.dumps(cal, indent=1, sort_keys=True))
    print(f"calibration written to {path} in {cal['machine']['seconds']:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
