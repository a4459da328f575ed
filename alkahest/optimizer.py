"""``alkahest.optimize``: rewrite expressions for speed or for accuracy with an e-graph.

The expressions go into an e-graph (``alkahest-egraph``, on the ``egg`` crate), which is
saturated with rewrite rules within node, iteration and time limits; then one program per
output is extracted by a cost per operation:

* ``goal="speed"``: the calibrated bulk cost of each operation (the cost model's table
  for the fastest tier). The rules are the *exact* ones (the same bits for every input:
  commutativity, sign moves, ``x/4`` as ``x*0.25``, ...) and, unless ``measure=False``,
  associativity and distributivity, kept per output only where no sampled point loses
  more than two bits (three ulps where the original was exact) and the average error
  grows by at most 0.2 bits (any regrouping under ``fastmath=True``). The extraction is
  also offered with its shared sums and products regrouped (:mod:`alkahest.regroup`),
  under the same check against an extended-precision reference. A result predicted
  slower than the original is not returned.
* ``goal="accuracy"``: the *measured local error* of each operation, Herbie's way. Inputs
  are sampled (from ``domain``, else uniformly over the bit patterns of the finite
  doubles, as Herbie does); every e-class's exact value at each sample is computed with
  mpmath, at 256 bits and more until it is stable (all operations in a class are equal
  over the reals); an e-node's
  local error is how far the double operation on its children's exact values, rounded,
  lands from its class's exact value, rounded, in bits (``log2(1 + ulps)``). The rules
  add the rearrangements against cancellation (``expm1``, ``log1p``, differences of
  squares, roots, reciprocals and trigonometric functions, ``1 - cos``) and algebra.
  The extracted program is kept for an output only if its measured average error over
  the samples is lower than the original's (else the output is left as it was).

mpmath (pure Python, a dependency of SymPy) is the high-precision reference: it has every
function of the op table (``erf``, ``erfc``, ``cbrt``, ...) and needs no C library, and the
samples are few (256 by default), so its speed does not matter here.

>>> import alkahest as ak
>>> x, = ak.ExprPool().symbols("x")
>>> better, report = ak.optimize(ak.exp(x) - 1, [x], goal="accuracy", domain={x: (-1e-3, 1e-3)})
>>> better
expm1(x)
>>> report.bits_after[0] < report.bits_before[0]
True
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import Expr
from .compile import normalise
from .errors import ArgumentError

#: Tapes with more operations than this are returned unchanged (saturation would hit
#: its limits long before it paid for itself).
MAX_OPS = 20_000
#: Working precisions of the exact values (bits): every sample is computed at the first
#: two, and one whose values, rounded to doubles, differ between them at the next, until
#: two agree (cancellation between terms of very different magnitudes, ``sqrt(x + 1) -
#: sqrt(x)`` at ``x = 1e300``, needs more than 1,000 bits). The second is above the 1,075
#: bits between the largest double and the smallest: with 1,024, ``exp(y) - 1`` at
#: ``y = 1e-310`` was 0 at both of the first two precisions, and so taken as exact.
PRECISIONS = (256, 2048, 8192)
GOALS = ("speed", "accuracy")
#: A speed rewrite that regroups (changes roundings) is kept where no sample's error
#: grows by more than this (2 bits: 3 ulps where the original was exact; one regrouped
#: sum or product can cost that) and the average error grows by at most a tenth of this.
SPEED_TOLERANCE_BITS = 2.0
#: Sampled points with finite results a speed rewrite that regroups needs to be kept.
MIN_CHECKED = 32
#: E-nodes of an accuracy e-graph: each class's exact value is computed at every sample,
#: so this bounds the optimiser's time (about a second per 1,000 classes at 256 samples).
ACCURACY_NODES = 2_500


@dataclass(frozen=True)
class OptimizeReport:
    """What :func:`optimize` did: operations (tape instructions) before and after, the
    average and worst error over the samples in bits (``log2(1 + ulps)`` against the
    exact value; None when not measured), the rules that fired, the e-graph's size,
    whether each output's rewrite was kept, and the time taken."""

    goal: str
    ops_before: int
    ops_after: int
    bits_before: Optional[Tuple[float, float]] = None  # (average, worst)
    bits_after: Optional[Tuple[float, float]] = None
    rules: Mapping[str, int] = field(default_factory=dict)
    egraph: Mapping[str, Any] = field(default_factory=dict)
    kept: Tuple[bool, ...] = ()
    samples: int = 0
    seconds: float = 0.0
    skipped: Optional[str] = None

    def __str__(self) -> str:
        lines = [f"optimize(goal={self.goal!r}): {self.ops_before} -> {self.ops_after} operations in {self.seconds * 1e3:.1f} ms"]
        if self.skipped:
            lines.append(f"  skipped: {self.skipped}")
        if self.bits_before is not None and self.bits_after is not None:
            lines.append(f"  error over {self.samples} samples, bits (average / worst): "
                         f"{self.bits_before[0]:.2f} / {self.bits_before[1]:.2f} -> {self.bits_after[0]:.2f} / {self.bits_after[1]:.2f}")
        if self.rules:
            lines.append("  rules: " + ", ".join(f"{k} x{v}" for k, v in sorted(self.rules.items())))
        if self.egraph:
            lines.append(f"  e-graph: {self.egraph.get('nodes')} nodes, {self.egraph.get('classes')} classes, "
                         f"{self.egraph.get('iterations')} iterations, stopped: {self.egraph.get('stop_reason')}")
        return "\n".join(lines)


# --- exact and double evaluation of one operation ------------------------------------

def _mp():
    try:
        import mpmath
    except ImportError:  # pragma: no cover - mpmath comes with the test and optimize extras
        raise ImportError("alkahest.optimize measures errors with mpmath: pip install mpmath "
                          "(or alkahest[optimize]); goal='speed' with measure=False does without") from None
    return mpmath


def _real(mp, v):
    """A real mpf, or NaN for what is complex or undefined over the reals."""
    if isinstance(v, mp.mpc):
        return mp.mpf(v.real) if v.imag == 0 else mp.nan
    return v


def _mp_op(mp, name: str, args: Sequence[Any]):
    """The operation ``name`` over the reals at ``args`` (mpf), with the tape's semantics
    for conditions (NaN is true, comparisons with NaN false) and NaN where undefined."""
    a = args[0]
    nan = any(mp.isnan(x) for x in args)
    if name == "select":
        return args[1] if (mp.isnan(a) or a != 0) else args[2]
    if name in ("lt", "le", "gt", "ge", "eq", "ne"):
        b = args[1]
        if nan:
            return mp.mpf(1 if name == "ne" else 0)
        r = {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b, "eq": a == b, "ne": a != b}[name]
        return mp.mpf(1 if r else 0)
    if name in ("and", "or", "not"):
        truth = [mp.isnan(x) or x != 0 for x in args]
        r = (not truth[0]) if name == "not" else (truth[0] and truth[1]) if name == "and" else (truth[0] or truth[1])
        return mp.mpf(1 if r else 0)
    if nan:
        return mp.nan
    try:
        if name == "neg":
            return -a
        if name == "add":
            return a + args[1]
        if name == "sub":
            return a - args[1]
        if name == "mul":
            return a * args[1]
        if name == "div":
            b = args[1]
            if b == 0:
                return mp.nan if a == 0 else mp.inf * mp.sign(a)
            return a / b
        if name in _EXPONENTIAL and abs(a) > _HUGE_ARGUMENT:
            # Far beyond any double (exp(1e5) ~ 1e43429): an overflow, not a number
            # worth thousands of digits (points needing it drop out as non-finite).
            big = mp.inf if (a > 0 or name == "cosh") else (-1 if name == "expm1" else 0)
            return -mp.inf if name == "sinh" and a < 0 else big
        if name == "cbrt":
            return mp.sign(a) * mp.cbrt(abs(a))
        if name in ("log", "log2", "log10") and a == 0:
            return -mp.inf
        if name == "log1p" and a == -1:
            return -mp.inf
        if name == "log2":
            return _real(mp, mp.log(a, 2))
        if name == "round":
            return mp.sign(a) * mp.floor(abs(a) + mp.mpf(0.5))
        if name in ("min", "max"):
            return min(a, args[1]) if name == "min" else max(a, args[1])
        if name == "copysign":
            return abs(a) * (-1 if mp.sign(args[1]) < 0 else 1)
        if name == "pow":
            return _real(mp, mp.power(a, args[1]))
        if name == "atan2":
            return mp.atan2(a, args[1])
        if name == "atanh" and abs(a) == 1:
            return mp.inf * mp.sign(a)
        fn: Any = {"abs": abs, "floor": mp.floor, "ceil": mp.ceil, "log": mp.ln}.get(name) or getattr(mp, name)
        return _real(mp, fn(a))
    except (ValueError, ZeroDivisionError, OverflowError):
        return mp.nan


#: Functions that overflow any precision for large arguments, and how large.
_EXPONENTIAL = ("exp", "expm1", "sinh", "cosh")
_HUGE_ARGUMENT = 1e5


def _double_op(name: str, args: Sequence[np.ndarray]) -> np.ndarray:
    """The operation in double precision on arrays (NumPy; libm for what it lacks)."""
    a = args[0]
    with np.errstate(all="ignore"):
        if name in _NP_UNARY:
            return _NP_UNARY[name](a)
        if name in _NP_BINARY:
            return _NP_BINARY[name](a, args[1])
        if name == "select":
            return np.where(a != 0, args[1], args[2])
        if name in ("erf", "erfc"):
            f = getattr(math, name)
            return np.array([f(v) for v in a.tolist()])
        if name == "round":
            return np.where(a >= 0, np.floor(a + 0.5), np.ceil(a - 0.5))
        if name == "not":
            return (a == 0).astype(float)
        if name in ("and", "or"):
            x, y = a != 0, args[1] != 0
            return (x & y if name == "and" else x | y).astype(float)
    raise ArgumentError(f"no double evaluation of {name!r}")


_NP_UNARY: Dict[str, Callable[..., Any]] = {"neg": np.negative, "sqrt": np.sqrt, "cbrt": np.cbrt, "exp": np.exp, "expm1": np.expm1, "log": np.log,
             "log1p": np.log1p, "log2": np.log2, "log10": np.log10, "sin": np.sin, "cos": np.cos, "tan": np.tan,
             "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh,
             "tanh": np.tanh, "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh, "abs": np.abs,
             "floor": np.floor, "ceil": np.ceil}
_NP_BINARY: Dict[str, Callable[..., Any]] = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power,
              "atan2": np.arctan2, "min": np.minimum, "max": np.maximum, "copysign": np.copysign,
              "lt": lambda a, b: (a < b).astype(float), "le": lambda a, b: (a <= b).astype(float),
              "gt": lambda a, b: (a > b).astype(float), "ge": lambda a, b: (a >= b).astype(float),
              "eq": lambda a, b: (a == b).astype(float), "ne": lambda a, b: (a != b).astype(float)}


def _ordinal(x: np.ndarray) -> np.ndarray:
    """Doubles as int64 in the order of the reals (neighbours differ by 1)."""
    bits = np.asarray(x, dtype=np.float64).view(np.int64)
    return np.where(bits < 0, -(bits & 0x7FFFFFFFFFFFFFFF), bits)


def bits_of_error(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Herbie's error: ``log2(1 + |ulps between got and the exact value rounded|)``; 0 where
    both are NaN, 64 where one is."""
    got, exact = np.asarray(got, dtype=np.float64), np.asarray(exact, dtype=np.float64)
    a, b = _ordinal(got), _ordinal(exact)
    # Exact in integers where the signs agree (no overflow); across zero the distance is
    # huge and a float difference is precise enough.
    same = (a >= 0) == (b >= 0)
    d = np.where(same, np.abs(np.where(same, a - b, 0)).astype(np.float64),
                 np.abs(a.astype(np.float64) - b.astype(np.float64)))
    bits = np.log2(1.0 + d)
    both, one = np.isnan(got) & np.isnan(exact), np.isnan(got) ^ np.isnan(exact)
    return np.where(both, 0.0, np.where(one, 64.0, np.minimum(bits, 64.0)))


# --- sampling ------------------------------------------------------------------------

def _sample(n: int, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` doubles uniform over the bit patterns of [lo, hi] (every magnitude alike)."""
    a, b = int(_ordinal(np.array([lo]))[0]), int(_ordinal(np.array([hi]))[0])
    k = rng.integers(a, b, size=n, endpoint=True).astype(np.int64)
    bits = np.where(k < 0, (-k) | np.int64(-0x8000000000000000), k)
    return bits.view(np.float64)


Precondition = Callable[..., np.ndarray]


def sample_points(vars: Sequence[Expr], domain: Optional[Mapping[Any, Tuple[float, float]]], n: int,
                  seed: int = 0, precondition: Optional[Precondition] = None) -> List[np.ndarray]:
    """``n`` points (one array per input) from ``domain``, uniformly over bit patterns,
    keeping those where ``precondition(*arrays)`` holds (up to 8 rounds of drawing)."""
    if precondition is None:
        return _draw(vars, domain, n, np.random.default_rng(seed))
    rng = np.random.default_rng(seed)
    kept: List[List[np.ndarray]] = []
    have = 0
    for _ in range(8):
        arrays = _draw(vars, domain, 4 * n, rng)
        ok = np.asarray(precondition(*arrays), dtype=bool)
        kept.append([a[ok] for a in arrays])
        have += int(ok.sum())
        if have >= n:
            break
    return [np.concatenate([k[i] for k in kept])[:n] for i in range(len(vars))]


def _draw(vars: Sequence[Expr], domain: Optional[Mapping[Any, Tuple[float, float]]], n: int,
          rng: np.random.Generator) -> List[np.ndarray]:
    domain = dict(domain or {})
    by_name = {(k if isinstance(k, str) else str(k)): v for k, v in domain.items()}
    unknown = set(by_name) - {str(v) for v in vars}
    if unknown:
        raise ArgumentError(f"domain names {', '.join(sorted(unknown))}, which are not among the inputs")
    big = np.finfo(np.float64).max
    out = []
    for v in vars:
        lo, hi = by_name.get(str(v), (-big, big))
        if not (lo <= hi) or not (math.isfinite(lo) and math.isfinite(hi)):
            raise ArgumentError(f"the domain of {v} must be finite numbers lo <= hi, got ({lo}, {hi})")
        out.append(_sample(n, float(lo), float(hi), rng))
    return out


# --- the e-graph's exact values and local errors ---------------------------------------

def _class_values(classes, points: List[np.ndarray]) -> Dict[int, list]:
    """Each class's exact value at every sample (mpf), from any node whose children have
    theirs (every node of a class has the same real value)."""
    mp = _mp()
    n = len(points[0])
    values: Dict[int, list] = {}
    pending = list(classes)
    while pending:
        left = []
        for cid, const, nodes in pending:
            if const is not None:
                values[cid] = [mp.mpf(const)] * n
                continue
            for op, payload, children in nodes:
                if op == "var":
                    values[cid] = [mp.mpf(float(x)) for x in points[int(payload)]]
                    break
                if op == "const":
                    values[cid] = [mp.mpf(payload)] * n
                    break
                if all(c in values for c in children):
                    cols = [values[c] for c in children]
                    values[cid] = [_mp_op(mp, op, [col[i] for col in cols]) for i in range(n)]
                    break
            else:
                left.append((cid, const, nodes))
        if len(left) == len(pending):
            break  # classes reachable only through cycles: never extracted
        pending = left
    return values


def _stable_values(classes, points: List[np.ndarray]) -> Tuple[Dict[int, list], np.ndarray]:
    """:func:`_class_values` at the first precisions of :data:`PRECISIONS`; the samples
    where some class's value, rounded to a double, differs between the last two are
    recomputed at the next. Returns the values and which samples are stable."""
    mp = _mp()
    n = len(points[0])

    def at(prec: int, idx: np.ndarray) -> Dict[int, list]:
        with mp.workprec(prec):
            return _class_values(classes, [p[idx] for p in points])

    def differ(a: Dict[int, list], b: Dict[int, list], m: int) -> np.ndarray:
        bad = np.zeros(m, dtype=bool)
        for cid, va in a.items():
            vb = b.get(cid)
            if vb is None:
                continue
            da, db = _to_double(va), _to_double(vb)
            bad |= ~((da == db) | (np.isnan(da) & np.isnan(db)))
        return bad

    values = at(PRECISIONS[0], np.arange(n))
    unstable = np.arange(n)
    for prec in PRECISIONS[1:]:
        if not len(unstable):
            break
        finer = at(prec, unstable)
        current = {cid: [v[k] for k in unstable.tolist()] for cid, v in values.items()}
        changed = differ(current, finer, len(unstable))
        for cid, vals in finer.items():
            column = values.setdefault(cid, [mp.nan] * n)
            for k, v in zip(unstable.tolist(), vals):
                column[k] = v
        unstable = unstable[changed]
    stable = np.ones(n, dtype=bool)
    stable[unstable] = False
    return values, stable


def _to_double(vals: list) -> np.ndarray:
    return np.array([float(v) for v in vals], dtype=np.float64)


def _local_errors(classes, values: Dict[int, list]) -> List[float]:
    """Average local error (bits) of every e-node, in the order of ``classes``."""
    doubles = {cid: _to_double(v) for cid, v in values.items()}
    out: List[float] = []
    for cid, _, nodes in classes:
        exact = doubles.get(cid)
        for op, _, children in nodes:
            if op in ("var", "const") or exact is None or any(c not in doubles for c in children):
                out.append(0.0 if op in ("var", "const") else 1e6)
                continue
            got = _double_op(op, [doubles[c] for c in children])
            out.append(float(np.mean(bits_of_error(got, exact))))
    return out


def _predicted_cost(exprs: Sequence[Expr], inputs: Sequence[Expr], costs: Mapping[str, float]) -> float:
    """Bulk seconds per point of the expressions' tape by the calibrated operation costs."""
    from .costmodel import Features

    counts = Features.of(_native.lower(list(exprs), list(inputs))).counts
    default = costs.get("default", 1e-9)
    return sum(n * costs.get(op, default) for op, n in counts.items())


def _op_costs() -> Dict[str, float]:
    """Seconds per point of each operation in bulk (the fastest host tier, vector math),
    calibrated."""
    from . import tiers
    from .costmodel import CostModel

    ops = CostModel.load().calibration["bulk_vector_math"][tiers.HOST[-1].name]["ops"]
    return {k: float(v) for k, v in ops.items()}


# --- the optimiser ------------------------------------------------------------------

def _errors(exprs: Sequence[Expr], vars: Sequence[Expr], points: List[np.ndarray], exact: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Per output, the error in bits at each sample of the expressions computed in double
    (the interpreter with libm: what every tier computes, bulk vector math aside)."""
    from .api import compile_expr
    from .batch import numpy_eval
    from .config import CompileConfig

    from . import tiers

    config = CompileConfig(tier=tiers.FLOOR.name, vector_math=False)
    f = compile_expr(list(exprs), list(vars), config, cache=False)
    got = numpy_eval(f, *points)
    got = got if isinstance(got, tuple) else (got,)
    return [bits_of_error(g, e) for g, e in zip(got, exact)]


def measure_error(expr_or_list: Union[Expr, Sequence[Expr]], vars: Sequence[Expr],
                  domain: Optional[Mapping[Any, Tuple[float, float]]] = None, *, samples: int = 1024, seed: int = 1,
                  precondition: Optional[Precondition] = None) -> Tuple[float, float]:
    """(average, worst) error in bits of the expressions computed in double, over sampled
    inputs where every exact result is finite (Herbie's measure; see :func:`optimize`).

    >>> import alkahest as ak
    >>> x, = ak.ExprPool().symbols("x")
    >>> measure_error(ak.expm1(x), [x], {x: (-1e-3, 1e-3)}, samples=64)[0] < 1
    True
    """
    outputs, inputs = normalise(expr_or_list, vars)
    graph = _native.saturate(list(outputs), list(inputs), iter_limit=0)
    points, exact, _ = _exact_outputs(graph, inputs, domain, samples, seed, precondition)
    if not len(points[0]):
        raise ArgumentError("no sampled point has finite exact results; give a domain where the expressions are defined")
    errors = np.concatenate(_errors(outputs, inputs, points, exact))
    return float(np.mean(errors)), float(np.max(errors))


def _exact_outputs(graph: Any, inputs: Sequence[Expr], domain: Any, samples: int, seed: int,
                   precondition: Optional[Precondition]):
    """(points, exact outputs rounded, class values at the points) for ``samples``
    points where every output's exact value is finite and known to double precision."""
    mp = _mp()
    classes = graph.classes()
    raw = sample_points(inputs, domain, samples * 2, seed, precondition)
    values, stable = _stable_values(classes, raw)
    roots = [values.get(r) for r in graph.roots]
    keep = stable.copy()
    for r in roots:
        if r is not None:
            keep &= np.array([bool(mp.isfinite(v)) for v in r], dtype=bool)
    idx = np.flatnonzero(keep)[:samples]
    points = [p[idx] for p in raw]
    exact = [(_to_double([r[i] for i in idx]) if r is not None else np.full(len(idx), np.nan)) for r in roots]
    return points, exact, {cid: [v[i] for i in idx] for cid, v in values.items()}


def optimize(expr_or_list: Union[Expr, Sequence[Expr]], vars: Sequence[Expr], goal: str = "speed",
             domain: Optional[Mapping[Any, Tuple[float, float]]] = None, *, samples: int = 256, seed: int = 0,
             fastmath: bool = False, node_limit: Optional[int] = None, time_limit: float = 0.5,
             measure: bool = True, precondition: Optional[Precondition] = None) -> Tuple[Any, OptimizeReport]:
    """The expressions rewritten for ``goal`` (``"speed"`` or ``"accuracy"``), in the shape
    given (one expression or a list), and an :class:`OptimizeReport`.

    ``domain``: ``{symbol or name: (lo, hi)}`` to sample inputs from (default: every finite
    double, uniformly over bit patterns), and ``precondition(*arrays)``: a boolean array
    saying which sampled points count. ``samples``, ``seed``: the sample. ``fastmath``
    (speed): also regroup sums and products. ``node_limit`` (default 20,000 for speed,
    2,500 for accuracy) and ``time_limit`` (seconds) bound the saturation. ``measure``
    (speed): measure the error before and after (always done for accuracy).
    """
    start = time.perf_counter()
    if goal not in GOALS:
        raise ArgumentError(f"goal must be one of {', '.join(map(repr, GOALS))}, got {goal!r}")
    single = isinstance(expr_or_list, Expr)
    outputs, inputs = normalise(expr_or_list, vars)
    ops_before = _native.lower(outputs, inputs).n_ops

    def finish(result: List[Expr], **fields: Any) -> Tuple[Any, OptimizeReport]:
        ops_after = _native.lower(result, inputs).n_ops
        report = OptimizeReport(goal=goal, ops_before=ops_before, ops_after=ops_after,
                                seconds=time.perf_counter() - start, **fields)
        return (result[0] if single else result), report

    if ops_before > MAX_OPS:
        return finish(list(outputs), skipped=f"{ops_before} operations, above optimize.MAX_OPS={MAX_OPS}")
    accuracy = goal == "accuracy"
    limit = node_limit if node_limit is not None else (ACCURACY_NODES if accuracy else 20_000)
    # Speed: regrouping (algebra) only where its effect on accuracy is measured, or allowed.
    graph = _native.saturate(list(outputs), list(inputs), algebra=accuracy or fastmath or measure,
                             accuracy=accuracy, node_limit=limit, time_limit=time_limit)
    info = graph.report()
    points: List[np.ndarray] = []
    exact: List[np.ndarray] = []
    unchecked = "no sampled point has finite exact results (give a domain where the expressions are defined)"
    if accuracy:
        # Herbie keeps the points where every output's exact value is finite.
        classes = graph.classes()
        points, exact, values = _exact_outputs(graph, inputs, domain, samples, seed, precondition)
        if not len(points[0]):
            return finish(list(outputs), kept=(False,) * len(outputs), skipped=unchecked, rules=dict(info["applied"]))
        local = _local_errors(classes, values)
    costs_by_op = _op_costs()
    default = costs_by_op.get("default", 1e-9)
    if accuracy:
        op_cost = [0.0 if op in ("var", "const") else costs_by_op.get(op, default)
                   for _, _, nodes in classes for op, _, _ in nodes]
        # Operations break ties between (nearly) equal errors: each weighs 0.02 bits and
        # as much again per typical operation's cost (some calibrated costs are 0), so a
        # longer program must be measurably more accurate to win.
        positive = [c for c in op_cost if c > 0]
        typical = float(np.median(positive)) if positive else 1.0
        ops = [op for _, _, nodes in classes for op, _, _ in nodes]
        weight = [0.0 if op in ("var", "const") else 0.02 * (1.0 + c / typical) for op, c in zip(ops, op_cost)]
        candidate = graph.extract([e + w for e, w in zip(local, weight)])
    else:
        candidate = graph.extract_by_op(costs_by_op, default)
    fields: Dict[str, Any] = {"rules": dict(info["applied"]), "samples": len(points[0]) if points else 0,
                              "egraph": {k: info[k] for k in ("nodes", "classes", "iterations", "stop_reason", "seconds")}}
    if accuracy:
        return _keep_more_accurate(outputs, candidate, inputs, points, exact, finish, fields)
    return _speed(outputs, candidate, inputs, domain, samples, seed, precondition, fastmath, measure, costs_by_op,
                  finish, fields)


def _speed(outputs, candidate, inputs, domain, samples, seed, precondition, fastmath, measure, costs_by_op, finish,
           fields):
    """The speed goal after extraction: the cheaper of the extraction and the original,
    then (unless ``measure=False`` without fastmath) the same with its shared sums and
    products regrouped (:mod:`alkahest.regroup`), each kept only as its check allows."""
    from .regroup import extended_values, regrouped

    def cost(exprs):
        return _predicted_cost(exprs, inputs, costs_by_op)

    extracted = cost(candidate) < cost(outputs)
    if not extracted:
        # Extraction prices trees, so a DAG's shared work can come out duplicated.
        candidate = list(outputs)
    shared = regrouped(candidate, inputs) if (fastmath or measure) else None
    if shared is not None and cost(shared) >= cost(candidate):
        shared = None
    if fastmath:
        # Any regrouping allowed: nothing to check.
        return finish(shared or candidate, kept=(extracted or shared is not None,) * len(outputs), **fields)
    if not measure:
        # Exact rules only: the same bits.
        return finish(candidate, kept=(extracted,) * len(outputs), **fields)
    # The reference: the original outputs in extended precision, at points where each is finite.
    raw = sample_points(inputs, domain, samples, seed, precondition)
    reference = extended_values(outputs, inputs, raw)
    finite = np.all([np.isfinite(r) for r in reference], axis=0)
    points, exact = [p[finite] for p in raw], [r[finite] for r in reference]
    fields["samples"] = len(points[0])
    if len(points[0]) < min(samples, MIN_CHECKED):
        # Too little to vouch for an inexact rewrite: the expressions stay as they were.
        unchecked = (f"{len(points[0])} of {samples} sampled points have finite results, fewer than "
                     f"{min(samples, MIN_CHECKED)} (give a domain where the expressions are defined)")
        return finish(list(outputs), kept=(False,) * len(outputs), skipped=unchecked, **fields)
    before = _errors(outputs, inputs, points, exact)

    def harmless(after):
        return [bool(np.all(a <= b + SPEED_TOLERANCE_BITS))
                and float(np.mean(a)) <= float(np.mean(b)) + 0.1 * SPEED_TOLERANCE_BITS for a, b in zip(after, before)]

    def summary(errors):
        joined = np.concatenate(errors)
        return float(np.mean(joined)), float(np.max(joined))

    if shared is not None:
        after = _errors(shared, inputs, points, exact)
        if all(harmless(after)):
            # All or nothing: the regrouped outputs share their parts with each other.
            return finish(shared, kept=(True,) * len(outputs), bits_before=summary(before), bits_after=summary(after),
                          **fields)
    after = _errors(candidate, inputs, points, exact)
    kept = [extracted and h for h in harmless(after)]
    result = [c if k else o for o, c, k in zip(outputs, candidate, kept)]
    final = [a if k else b for a, b, k in zip(after, before, kept)]
    return finish(result, kept=tuple(kept), bits_before=summary(before), bits_after=summary(final), **fields)


def _keep_more_accurate(outputs, candidate, inputs, points, exact, finish, fields):
    """The accuracy goal's choice: per output, the extraction where its measured average
    error is lower than the original's."""
    before = _errors(outputs, inputs, points, exact)
    after = _errors(candidate, inputs, points, exact)
    kept = [float(np.mean(a)) < float(np.mean(b)) for a, b in zip(after, before)]
    result = [c if k else o for o, c, k in zip(outputs, candidate, kept)]
    final = [a if k else b for a, b, k in zip(after, before, kept)]
    fields.update(kept=tuple(kept),
                  bits_before=(float(np.mean(np.concatenate(before))), float(np.max(np.concatenate(before)))),
                  bits_after=(float(np.mean(np.concatenate(final))), float(np.max(np.concatenate(final)))))
    return finish(result, **fields)
