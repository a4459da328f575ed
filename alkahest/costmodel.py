"""The cost model behind ``tier="auto"``: what each tier is predicted to cost for a tape.

For a tape with ``c_op`` instructions of each kind, ``i`` inputs, ``o`` outputs and
``k`` vector-math calls, on tier ``T`` (every constant is per tier, in seconds)::

    compile(T)     = base + per_op · n_ops + per_call · k + per_input · i + per_output · o
                                                                   (LLVM: per opt level, + startup once per process)
    scalar call(T) = call + i · input + o · output + Σ c_op · scalar[op]   (one f(...) from Python)
                     × up to scalar.large.scale for tapes past 8 Ki operations
    bulk(T, n)     = bulk_call + n / threads · (point + i · input + o · output + Σ c_op · bulk[op])
                     for arrays that stay in cache (n ≤ 16 Ki); at 1 Mi points and beyond,
                     large.point + i · large.input + o · large.output + large.scale · Σ c_op · bulk[op]
                     (memory traffic and page faults), interpolated in log n between

``bulk[op]`` has one table for ``vector_math=True`` and one for libm. An op missing from a
table costs its ``default``. A function computing in float32 (``CompileConfig(dtype=
"float32")``, or the float32 variant of one following its inputs) has its bulk per-point
costs scaled by the tier's measured ``float32`` ratios (float32 time over float64 time,
in cache and for large arrays: twice the lanes and half the bytes); scalar calls and
compiles cost the same in either type. The constants come from a calibration file written by
``python -m alkahest.calibrate`` (see :mod:`alkahest.calibrate`); alkahest ships one
measured on the machine it was developed on. Which file is read:

* ``$ALKAHEST_CALIBRATION`` if set (a path; ``default`` means the shipped file);
* else the user's file, ``$XDG_CACHE_HOME/alkahest/calibration.json``
  (``~/.cache/alkahest/calibration.json``), if it exists;
* else the shipped defaults.

>>> model = CostModel.load()  # doctest: +SKIP
>>> costs = model.predict(f.tape, "llvm")  # doctest: +SKIP
>>> costs.compile_s, costs.point_s  # doctest: +SKIP
(0.0121, 1.6e-09)
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

import numpy as np

from . import _native, ops
from . import tiers as _tiers
from .errors import CalibrationError

ENV_VAR = "ALKAHEST_CALIBRATION"
FORMAT = 1
SHIPPED = Path(__file__).with_name("calibration.json")

#: Points per parallel chunk in the runner: below two chunks bulk calls run on one thread.
PARALLEL_CHUNK = 1 << 14
#: Bulk calls up to this many points run with their arrays in cache (calibration size).
SMALL_N = 1 << 14
#: Arrays (inputs and outputs) of a typical calibration expression: one in, one out.
CALIBRATION_ARRAYS = 2
#: Operations up to which a scalar call costs what the calibration's small expressions
#: say; beyond, code and values leave the caches between calls (``scalar.large``).
SMALL_TAPE_OPS = 8_192


def user_path() -> Path:
    """Where ``python -m alkahest.calibrate`` writes by default and later runs look."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "alkahest" / "calibration.json"


def calibration_path() -> Path:
    """The calibration file this process reads (see the module docstring for the order)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return SHIPPED if env.strip().lower() == "default" else Path(env).expanduser()
    user = user_path()
    return user if user.is_file() else SHIPPED


OP_KINDS: Tuple[str, ...] = tuple(op.name for op in ops.TABLE)
_VECTOR_OPS: Optional[frozenset] = None


def _vector_ops() -> frozenset:
    """Op kinds bulk evaluation runs through vector math (libmvec) on this machine."""
    global _VECTOR_OPS
    if _VECTOR_OPS is None:
        _VECTOR_OPS = frozenset(_native.vector_math_functions())
    return _VECTOR_OPS


class Features:
    """What the model needs to know about a tape: ``vector`` is ``[1, inputs, outputs,
    count of each op kind in OP_KINDS order]``, so each prediction is one dot product."""

    __slots__ = ("vector",)

    def __init__(self, vector: np.ndarray) -> None:
        self.vector = vector

    @classmethod
    def of(cls, tape: "_native.Tape") -> "Features":
        return cls(np.array([1, tape.n_inputs, tape.n_outputs, *tape.op_count_vector()], dtype=float))

    @property
    def n_inputs(self) -> int:
        return int(self.vector[1])

    @property
    def n_outputs(self) -> int:
        return int(self.vector[2])

    @property
    def n_ops(self) -> int:
        return int(self.vector[3:].sum())

    @property
    def counts(self) -> Dict[str, int]:
        return {op: int(c) for op, c in zip(OP_KINDS, self.vector[3:]) if c}

    @property
    def n_vector_calls(self) -> int:
        vector_ops = _vector_ops()
        return sum(c for op, c in self.counts.items() if op in vector_ops)


@dataclass(frozen=True)
class TierCost:
    """Predicted costs of one tier for one tape, in seconds."""

    tier: str
    compile_s: float
    call_s: float  # one scalar call f(...), Python call included
    point_s: float  # one point of bulk evaluation on one thread, arrays in cache
    bulk_call_s: float  # fixed cost of one numpy_eval call
    large_point_s: float = 0.0  # one point when arrays are large (memory-bound); 0: as point_s
    large_n: int = 1 << 20
    arrays: int = CALIBRATION_ARRAYS  # inputs and outputs of the function

    def point_at(self, n: int) -> float:
        """Seconds per point of a bulk call over ``n`` points: the in-cache cost while
        the arrays take no more than the calibration's at 16 Ki points, the large-array
        cost from its size at ``large_n`` on, log-linear between. What leaves the cache is
        bytes, not points: a function of 150 arrays is memory-bound at 10^4 points (a
        measured 1,100-op model of 50 inputs and 100 outputs on LLVM: 285 ns per point at
        10^3 points, 696 at 10^5)."""
        m = n * self.arrays / CALIBRATION_ARRAYS  # points of a calibration expression, bytewise
        if not self.large_point_s or m <= SMALL_N:
            return self.point_s
        if m >= self.large_n:
            return self.large_point_s
        w = (math.log2(m) - math.log2(SMALL_N)) / (math.log2(self.large_n) - math.log2(SMALL_N))
        return (1 - w) * self.point_s + w * self.large_point_s

    def bulk_s(self, n: int, threads: int = 1) -> float:
        """One bulk call over ``n`` points on up to ``threads`` threads."""
        return self.bulk_call_s + n * self.point_at(n) / effective_threads(n, threads)

    def run_s(self, points: int = 0, calls: int = 0, threads: int = 1) -> float:
        """``calls`` scalar calls plus one bulk call over ``points`` points (if any)."""
        return calls * self.call_s + (self.bulk_s(points, threads) if points else 0.0)

    def total_s(self, points: int = 0, calls: int = 0, threads: int = 1, compiled: bool = False) -> float:
        """Compile (unless ``compiled``) and run."""
        return (0.0 if compiled else self.compile_s) + self.run_s(points, calls, threads)


def effective_threads(n: int, threads: int) -> int:
    """Threads the runner actually uses for ``n`` points (it splits in chunks of 16 Ki)."""
    if threads <= 1 or n < 2 * PARALLEL_CHUNK:
        return 1
    return max(1, min(threads, n // PARALLEL_CHUNK))


class CostModel:
    """Predictions from one calibration (a parsed calibration file)."""

    def __init__(self, calibration: Mapping[str, Any], source: str = "<dict>") -> None:
        self.calibration = calibration
        self.source = source
        self._check()
        self._tables: Dict[tuple, tuple] = {}

    def _check(self) -> None:
        c = self.calibration
        try:
            if c["format"] != FORMAT:
                raise CalibrationError(
                    f"{self.source}: calibration format {c['format']!r}, this alkahest reads {FORMAT}; "
                    "re-run `python -m alkahest.calibrate`"
                )
            for tier in _tiers.HOST:
                for section in ("scalar", "bulk_vector_math", "bulk_libm"):
                    t = c[section][tier.name]
                    float(t["ops"]["default"])
                comp = c["compile"][tier.name]
                for level in ("0", "1", "2", "3") if tier.per_opt_level else (None,):
                    entry = comp[level] if level else comp
                    float(entry["base"]), float(entry["per_op"]), float(entry["per_call"])
        except CalibrationError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise CalibrationError(
                f"{self.source} is not a usable calibration file ({type(e).__name__}: {e}); "
                "re-run `python -m alkahest.calibrate` or delete the file"
            ) from None

    @classmethod
    def load(cls, path: Optional[os.PathLike] = None) -> "CostModel":
        """The model from ``path`` (default: :func:`calibration_path`). The default one is
        read once per process and per value of ``$ALKAHEST_CALIBRATION``; an explicit
        ``path`` is re-read when the file changes."""
        if path is None:
            env = os.environ.get(ENV_VAR)
            cached = _DEFAULT.get(env)
            if cached is not None:
                return cached
            model = cls.load(calibration_path())
            _DEFAULT.clear()
            _DEFAULT[env] = model
            return model
        path = Path(path)
        try:
            stamp = path.stat().st_mtime_ns
        except OSError as e:
            raise CalibrationError(f"cannot read calibration file {path}: {e}; unset {ENV_VAR} or fix the path") from None
        key = (str(path), stamp)
        with _LOCK:
            loaded = _LOADED.get(key)
            if loaded is not None:
                return loaded
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise CalibrationError(
                    f"cannot read calibration file {path}: {e}; re-run `python -m alkahest.calibrate`"
                ) from None
            model = cls(data, str(path))
            _LOADED.clear()
            _LOADED[key] = model
            return model

    def predict(
        self, features: Features, tier: str, vector_math: bool = True, opt_level: int = 2, dtype: str = "float64"
    ) -> TierCost:
        """Predicted costs of compiling ``features``' tape for ``tier`` and running it in
        ``dtype``."""
        return self.predict_all(features, (tier,), vector_math, opt_level, dtype)[tier]

    def predict_all(self, features: Features, tiers: Iterable[str], vector_math: bool = True, opt_level: int = 2,
                    dtype: str = "float64") -> Dict[str, TierCost]:
        """:meth:`predict` for each of ``tiers``: one matrix-vector product (this runs
        once per adaptive function, on cold code, so it is kept short)."""
        tiers = tuple(tiers)
        key = (tiers, vector_math, opt_level, dtype)
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = self._table(tiers, vector_math, opt_level, dtype)
        matrix, bulk_calls, large_ns, startup = table
        values = (matrix @ features.vector).tolist()
        arrays = max(1, features.n_inputs + features.n_outputs)
        out = {}
        for i, tier in enumerate(tiers):
            compile_s, call, point, large = values[4 * i: 4 * i + 4]
            call *= _large_tape_scale(self.calibration["scalar"][tier].get("large"), features.n_ops)
            started = _tiers.get(tier).started
            if startup[i] and started is not None and not started():
                compile_s += startup[i]
            out[tier] = TierCost(tier, max(compile_s, 0.0), max(call, 0.0), max(point, 0.0), bulk_calls[i],
                                 max(large, 1e-15) if large_ns[i] else 0.0, large_ns[i] or 1 << 20, arrays)
        return out

    def float32_ratios(self, tier: str) -> Tuple[float, float]:
        """(in cache, large arrays): float32 bulk time over float64 time on ``tier``, as
        calibrated (1.0 for a calibration without float32 measurements)."""
        r = self.calibration.get("float32", {}).get(tier, {})
        return float(r.get("point", 1.0)), float(r.get("large", r.get("point", 1.0)))

    def _table(self, tiers: Tuple[str, ...], vector_math: bool, opt_level: int, dtype: str = "float64"):
        """Rows (compile, call, point, large point) per tier over the feature vector."""
        c = self.calibration
        vector_ops = _vector_ops()
        rows, bulk_calls, large_ns, startup = [], [], [], []
        for tier in tiers:
            comp = c["compile"][tier]
            startup.append(comp.get("startup", 0.0) if _tiers.get(tier).per_opt_level else 0.0)
            if _tiers.get(tier).per_opt_level:
                comp = comp[str(opt_level)]
            scalar = c["scalar"][tier]
            bulk = c["bulk_vector_math" if vector_math else "bulk_libm"][tier]
            s_ops, b_ops = scalar["ops"], bulk["ops"]
            b = [b_ops.get(op, b_ops["default"]) for op in OP_KINDS]
            # Per-input and per-output compile terms: older calibrations lack them.
            rows.append([comp["base"], comp.get("per_input", 0.0), comp.get("per_output", 0.0)]
                        + [comp["per_op"] + (comp["per_call"] if op in vector_ops else 0.0) for op in OP_KINDS])
            # Per-input and per-output terms of the scalar call: older calibrations lack them.
            rows.append([scalar["call"], scalar.get("input", 0.0), scalar.get("output", 0.0)]
                        + [s_ops.get(op, s_ops["default"]) for op in OP_KINDS])
            small_ratio, large_ratio = self.float32_ratios(tier) if dtype == "float32" else (1.0, 1.0)
            rows.append([small_ratio * x for x in [bulk["point"], bulk["input"], bulk["output"]] + b])
            large = bulk.get("large")
            if large:
                rows.append([large_ratio * x for x in
                             [large["point"], large["input"], large["output"]] + [large["scale"] * x for x in b]])
            else:
                rows.append([0.0] * (3 + len(OP_KINDS)))
            bulk_calls.append(bulk["call"])
            large_ns.append(int(large["n"]) if large else 0)
        return np.array(rows), bulk_calls, large_ns, startup


    def cached_compile_s(self, features: Features, tier: str) -> Optional[float]:
        """Predicted compile time of ``tier`` when its disk cache has the code (None: the
        tier has no disk cache, or it is not calibrated)."""
        c = self.calibration["compile"].get(tier, {}).get("cached")
        if not c:
            return None
        return max(0.0, c["base"] + c["per_op"] * features.n_ops + c["per_call"] * features.n_vector_calls)


def _large_tape_scale(large: Optional[Mapping[str, float]], n_ops: int) -> float:
    """How much more a scalar call of ``n_ops`` operations costs than the small
    expressions' costs say: 1 up to SMALL_TAPE_OPS, the calibrated ``scale`` at the
    calibration tape's ``ops`` and beyond, log-linear between (1 where not calibrated)."""
    if not large or n_ops <= SMALL_TAPE_OPS:
        return 1.0
    span = math.log2(max(float(large["ops"]), 2.0 * SMALL_TAPE_OPS) / SMALL_TAPE_OPS)
    return 1.0 + min(1.0, math.log2(n_ops / SMALL_TAPE_OPS) / span) * (float(large["scale"]) - 1.0)


_LOCK = threading.Lock()
_LOADED: Dict[Tuple[str, int], CostModel] = {}
_DEFAULT: Dict[Optional[str], CostModel] = {}


def forget_loaded() -> None:
    """Makes the next prediction re-read its calibration file (after re-calibrating)."""
    with _LOCK:
        _LOADED.clear()
    _DEFAULT.clear()


def best_tier(
    costs: Mapping[str, TierCost], points: int = 0, calls: int = 0, threads: int = 1, compiled: Iterable[str] = ()
) -> Tuple[str, Dict[str, float]]:
    """The tier with the least predicted total time for the given work, and every
    tier's total (tiers in ``compiled`` cost no compile). Ties go to the cheaper tier
    (the order of ``costs``)."""
    done = set(compiled)
    totals = {t: c.total_s(points, calls, threads, compiled=t in done) for t, c in costs.items()}
    return min(totals, key=totals.__getitem__), totals
