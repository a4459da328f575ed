"""Tier dispatch: which tier runs a function, and tier-up of adaptive functions.

``compile_expr(e, vars)`` resolves ``CompileConfig.tier`` here:

* An explicit tier (or one forced by ``$ALKAHEST_TIER``) is compiled as asked, falling
  back to cheaper tiers if it fails.
* ``tier="auto"`` with ``expected_evals`` / ``expected_calls``: the tier with the least
  predicted compile + run time under the cost model (:mod:`alkahest.costmodel`).
* ``tier="auto"`` with neither: an *adaptive* function. It starts on the interpreter
  (nothing to compile) and its calls feed a lock-free work meter in Rust:

  - A bulk call (``numpy_eval``) big enough that a faster tier would pay for its own
    compile within that call compiles it first, on the calling thread, and runs on it.
  - Otherwise the meter adds up, for each faster tier, the time it would have saved.
    Once that passes half the tier's predicted compile time (a rent-or-buy rule; half,
    because the compile runs beside the calls rather than in their way), the tier is
    compiled on a background thread and swapped in atomically. Calls made meanwhile run
    on the old tier; no call waits for the background compile.

Every function can say why it runs where it does: ``alkahest.explain(f)``.

>>> f = compile_expr(x**2 + sin(y), [x, y])  # doctest: +SKIP
>>> f.tier, f.adaptive  # doctest: +SKIP
('interpreter', True)
>>> for i in range(100_000): f(0.1 * i, 2.0)  # doctest: +SKIP
>>> f.tier  # doctest: +SKIP
'cranelift'
>>> print(alkahest.explain(f))  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ._native import CompiledFn, Tape
from .compile import compile_tier, compile_with_fallback
from . import tiers
from .config import CompileConfig, check_available, disabled_tiers, forced_tier, tierup_enabled, usable_tiers
from .costmodel import CostModel, Features, TierCost, best_tier
from .errors import AlkahestError, ArgumentError, ArgumentTypeError

# Until the model is consulted (tens of microseconds of Python), an adaptive function
# just counts: 2,048 scalar calls or 2**20 points in bulk, whichever comes first, and bulk
# calls of 2**17 points or more decide at once. No faster tier can pay for its compile
# (0.1 ms or more) within less work than that, and the model's own cost stays a few
# percent of the work done so far.
_ARM_CALL_WEIGHT, _ARM_POINT_WEIGHT, _ARM_THRESHOLD, _ARM_SYNC_POINTS = 512, 1, 1 << 20, 1 << 17
# A bulk call compiles a faster tier first only if that is predicted to save at least
# this share of its time: near break-even, errors in the predicted compile time dominate.
_SYNC_MARGIN = 0.10
# Background compiles run beside the calls (on another core, GIL released), so waiting
# for the full break-even would only lengthen the time spent on the slower tier: a tier is
# compiled once the predicted saving reaches this share of its compile time.
_BACKGROUND_AT = 0.5
_NEVER = 2**64 - 1
_UNITS_PER_S = 1e12  # meter work units are picoseconds of predicted saving
# What the controller measures: a tier's one-thread bulk time counts once it has run at
# least this many points, in at least this many calls or this many seconds (huge calls
# are few), and a tier-up measured more than this factor slower per point than the tier
# it replaced is undone.
_MIN_MEASURED_POINTS, _MIN_MEASURED_CALLS, _MIN_MEASURED_S = 1 << 16, 3, 0.05
_SLOWER = 1.10


_rank = tiers.rank
# Niceness added to a background compile thread (Linux, where it is per thread): a
# compile competing for the caller's core gets about a tenth of it.
_BACKGROUND_NICE = 10


def _lower_this_threads_priority() -> None:
    """Lowers the calling thread's scheduling priority where that is per thread (Linux;
    elsewhere ``setpriority`` would slow the whole process, so nothing changes)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + _BACKGROUND_NICE))
    except OSError:  # pragma: no cover - a sandbox may forbid it: then it runs as is
        pass


def _counts(fn: CompiledFn) -> Tuple[int, int]:
    """(scalar calls, bulk points) an adaptive function has run."""
    reading = fn._meter()
    assert reading is not None, "only adaptive functions have a controller"
    return reading[0], reading[1]


def _units(seconds: float) -> int:
    return min(_NEVER - 1, max(0, int(seconds * _UNITS_PER_S)))


@dataclass(frozen=True)
class TierUp:
    """One tier change of an adaptive function (or a failed attempt: ``error`` set)."""

    from_tier: str
    to_tier: str
    trigger: str  # "background" (its use passed break-even) or "bulk call of N points"
    calls: int  # scalar calls and bulk points evaluated before the change
    points: int
    predicted_compile_s: float
    compile_s: float
    error: Optional[str] = None


@dataclass(frozen=True)
class DispatchReport:
    """Why a function runs on its tier (``alkahest.explain(f)``); ``str()`` is a table."""

    function: str
    tier: str
    adaptive: bool
    reason: str
    predictions: Mapping[str, TierCost]
    totals: Mapping[str, float] = field(default_factory=dict)  # predicted total per tier for the stated work
    calls: int = 0
    points: int = 0
    tier_ups: Tuple[TierUp, ...] = ()
    compiling: Optional[str] = None
    next_tier: Optional[str] = None
    next_progress: Tuple[float, float] = (0.0, 0.0)  # predicted saving so far, and needed (s)
    calibration: str = ""
    measured: Mapping[str, float] = field(default_factory=dict)  # one-thread bulk seconds per point, per tier
    dtype: str = "float64"  # the element type the function computes in
    #: The report of the float32 variant its float32 inputs run (once made).
    float32_variant: Optional["DispatchReport"] = None
    #: What ``CompileConfig(optimize=...)`` did to the expressions (an ``OptimizeReport``).
    optimization: Optional[Any] = None

    def __str__(self) -> str:
        in_type = ", in float32" if self.dtype == "float32" else ""
        lines = [f"{self.function}: tier {self.tier!r}{' (adaptive)' if self.adaptive else ''}{in_type}",
                 f"  why: {self.reason}"]
        if self.predictions:
            lines.append(f"  predicted (calibration: {self.calibration}):")
            lines.append(f"    {'tier':<12} {'compile':>11} {'scalar call':>12} {'bulk/point':>11}" + (f" {'total':>11}" if self.totals else ""))
            for t, c in self.predictions.items():
                row = f"    {t:<12} {_fmt(c.compile_s):>11} {_fmt(c.call_s):>12} {_fmt(c.point_s):>11}"
                if self.totals:
                    row += f" {_fmt(self.totals[t]):>11}"
                lines.append(row)
        if self.adaptive:
            lines.append(f"  work so far: {self.calls} scalar calls, {self.points} points in bulk")
            if self.measured:
                lines.append("  measured bulk/point: " + ", ".join(f"{t} {_fmt(v)}" for t, v in self.measured.items()))
            for u in self.tier_ups:
                what = f"failed: {u.error}" if u.error else f"took {_fmt(u.compile_s)}"
                lines.append(
                    f"  {u.from_tier} -> {u.to_tier} ({u.trigger}) after {u.calls} calls, {u.points} points:"
                    f" predicted compile {_fmt(u.predicted_compile_s)}, {what}"
                )
            if self.compiling:
                lines.append(f"  compiling {self.compiling!r} in the background")
            elif self.next_tier:
                done, need = self.next_progress
                lines.append(
                    f"  next: {self.next_tier!r} once its predicted saving reaches its compile time"
                    f" ({_fmt(done)} of {_fmt(need)})"
                )
            else:
                lines.append("  next: none (no faster tier predicted)")
        if self.optimization is not None:
            lines.append("  rewritten before compiling:")
            lines += ["    " + line for line in str(self.optimization).split("\n")]
        if self.float32_variant is not None:
            lines.append("  float32 inputs run its float32 variant:")
            lines += ["    " + line for line in str(self.float32_variant).split("\n")]
        return "\n".join(lines)


def _fmt(s: float) -> str:
    if s >= 1.0:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    if s >= 1e-6:
        return f"{s * 1e6:.2f} us"
    return f"{s * 1e9:.2f} ns"


def _predictions(tape: Tape, config: CompileConfig, tiers: Tuple[str, ...]) -> Tuple[CostModel, Dict[str, TierCost]]:
    model = CostModel.load()
    return model, model.predict_all(Features.of(tape), tiers, config.vector_math, config.opt_level, config.element_type)


def _decide_with_disk_cache(tape: Tape, config: CompileConfig, model: CostModel, costs: Dict[str, TierCost],
                            decide: Callable[[Dict[str, TierCost]], Tuple[str, Dict[str, float]]]):
    """``decide(costs)``, and if a tier with a disk cache would win were its code on
    disk, a look at that cache (computing the key costs about as much as a small compile,
    so only then): returns (costs, best, totals) with that tier's compile priced as a
    load when its code is there."""
    best, totals = decide(costs)
    if config.cache_dir is False:
        return costs, best, totals
    for tier in tiers.HOST:
        cost = costs.get(tier.name)
        if tier.disk_cached is None or cost is None or best == tier.name:
            continue
        load_s = model.cached_compile_s(Features.of(tape), tier.name)
        if load_s is None or load_s >= cost.compile_s:
            continue
        trial = dict(costs)
        trial[tier.name] = replace(cost, compile_s=load_s)
        best2, totals2 = decide(trial)
        if best2 == tier.name and _disk_cached(tier, tape, config):
            return trial, best2, totals2
    return costs, best, totals


def _disk_cached(tier: tiers.Tier, tape: Tape, config: CompileConfig) -> bool:
    assert tier.disk_cached is not None
    try:
        return tier.disk_cached(tape, config)
    except (ImportError, OSError, AlkahestError):
        return False


class Decision:
    """How a non-adaptive function's tier was chosen (attached to it for reports)."""

    def __init__(self, fn_name: str, tape: Tape, config: CompileConfig, reason: str,
                 costs: Optional[Dict[str, TierCost]] = None, totals: Optional[Dict[str, float]] = None,
                 calibration: str = "") -> None:
        self._fn_name, self._tape, self._config = fn_name, tape, config
        self._reason, self._costs, self._totals, self._calibration = reason, costs, totals or {}, calibration
        self.tier = ""

    @property
    def config(self) -> CompileConfig:
        """The config the function was compiled with (what its pickle carries)."""
        return self._config

    def report(self) -> DispatchReport:
        if self._costs is None:  # explicit tiers skip the model until someone asks
            model, self._costs = _predictions(self._tape, self._config, usable_tiers())
            self._calibration = model.source
        return DispatchReport(self._fn_name, self.tier, False, self._reason, self._costs, self._totals,
                              calibration=self._calibration)


@dataclass(frozen=True)
class Resolution:
    """The outcome of tier resolution: a tier, or ``"auto"`` for an adaptive function."""

    tier: str
    reason: str
    costs: Optional[Dict[str, TierCost]] = None
    totals: Optional[Dict[str, float]] = None
    calibration: str = ""


def resolve(tape: Callable[[], Tape], config: CompileConfig) -> Resolution:
    """The tier ``config`` asks for, after environment overrides and the model. ``tape``
    gives the lowered tape; only ``auto`` with a stated amount of work needs it."""
    forced = forced_tier()
    request = forced or config.tier
    if request != "auto":
        reason = f"forced by $ALKAHEST_TIER={forced}" if forced else f"explicit CompileConfig(tier={request!r})"
        return Resolution(check_available(request), reason)
    if not config.knows_work:
        disabled_tiers()  # a bad value must fail here, not later in a tier-up
        return Resolution("auto", "adaptive: starts on the interpreter and tiers up as it is used")
    lowered = tape()
    model, costs = _predictions(lowered, config, usable_tiers())
    points, calls = config.expected_evals or 0, config.expected_calls or 0
    priced, tier, totals = _decide_with_disk_cache(
        lowered, config, model, costs, lambda c: best_tier(c, points=points, calls=calls)
    )
    work = ", ".join(f"{k}={v}" for k, v in (("expected_evals", config.expected_evals), ("expected_calls", config.expected_calls)) if v is not None)
    disk = " (LLVM's code is in the disk cache: priced as a load)" if priced is not costs else ""
    return Resolution(tier, f"auto: least predicted compile + run time for {work}{disk}", priced, totals, model.source)


def build(tape: Tape, names: List[str], config: CompileConfig, resolution: Resolution) -> CompiledFn:
    """Compiles ``tape`` as ``resolution`` says and attaches how it was decided. With
    ``config.dtype=None`` its bulk calls on float32 inputs run a float32 variant
    (:func:`float32_variant`)."""
    fn_name = f"f({', '.join(names)})"
    if resolution.tier != "auto":
        fn = compile_with_fallback(tape, names, config, resolution.tier)
        decision = Decision(fn_name, tape, config, resolution.reason, resolution.costs, resolution.totals, resolution.calibration)
        decision.tier = fn.tier
        fn._attach_dispatch(decision)
    else:
        fn = compile_tier(tape, names, config, tiers.FLOOR.name)
        fn._attach_dispatch(
            Controller(fn, fn_name, tape, names, config),
            (_ARM_CALL_WEIGHT, _ARM_POINT_WEIGHT, _ARM_THRESHOLD, _ARM_SYNC_POINTS),
        )
    if config.dtype is None:
        fn._follow_input_dtype()
    return fn


def float32_variant(tape: Tape, names: List[str], decided_by: Any, output_shape: Optional[Sequence[int]]) -> CompiledFn:
    """The float32 function a float64 function following its inputs' type runs on float32
    inputs (called once per function, by its first such bulk call): the same tape and
    config with ``dtype="float32"``, its tier decided as the original's was (``decided_by``:
    the original's controller or decision, None for a function made without
    ``compile_expr``, which then runs on the interpreter)."""
    base = getattr(decided_by, "config", None) or CompileConfig(tier=tiers.FLOOR.name)
    config = replace(base, dtype="float32")
    fn = build(tape, names, config, resolve(lambda: tape, config))
    if output_shape is not None:
        fn._set_output_shape(list(output_shape))
    return fn


class Controller:
    """Tier-up of one adaptive function. Rust calls ``on_threshold()`` when the meter
    passes its threshold and ``on_bulk(n, threads)`` before a bulk call of at least the
    meter's sync size; both run with the GIL held on the calling thread, and return
    quickly unless a bulk call is predicted to be faster after a compile."""

    def __init__(self, fn: CompiledFn, fn_name: str, tape: Tape, names: List[str], config: CompileConfig) -> None:
        self._fn = weakref.ref(fn)  # the function holds the controller, not the reverse
        self._fn_name, self._tape, self._names, self._config = fn_name, tape, names, config
        self._lock = threading.Lock()
        self._costs: Optional[Dict[str, TierCost]] = None
        self._calibration = ""
        self._baseline: Tuple[int, int] = (0, 0)  # (calls, points) when the current tier came in
        self._compiling: Optional[str] = None
        self._compiling_from = ""  # the tier the function ran when the compile began
        self._failed: set = set()
        self._tier_ups: List[TierUp] = []
        # The tier a tier-up replaced, while the new tier's bulk speed is still to be
        # compared with it.
        self._unverified: Optional[str] = None
        _CONTROLLERS.add(self)

    @property
    def config(self) -> CompileConfig:
        """The config the function was compiled with (what its pickle carries)."""
        return self._config

    # -- called from the meter --------------------------------------------------------

    def on_threshold(self) -> None:
        fn = self._fn()
        if fn is None:
            return
        with self._lock:
            if self._costs is None:
                self._start_model(fn)
                return
            if self._compiling is not None:
                return
            if self._verify(fn):
                self._rearm(fn)
                return
            calls, points = self._since_install(fn)
            costs = self._adjusted(fn)
            ready = [(saved - compile_s, t) for t, saved, compile_s in self._savings(fn.tier, calls, points, costs)
                     if saved >= _BACKGROUND_AT * compile_s]
            if not ready or not tierup_enabled():
                self._rearm(fn)
                return
            target = max(ready)[1]
            self._begin(target)
            calls, points = _counts(fn)
        thread = threading.Thread(
            target=self._compile_in_background, args=(target, calls, points),
            name=f"alkahest-tierup-{target}", daemon=True,
        )
        thread.start()

    def on_bulk(self, n: int, threads: int) -> None:
        fn = self._fn()
        if fn is None:
            return
        with self._lock:
            if self._costs is None:
                self._start_model(fn)
            if self._compiling is not None:
                return
            self._verify(fn)
            current = fn.tier
            options = {t: c for t, c in self._adjusted(fn).items()
                       if t == current or (_rank(t) > _rank(current) and t not in self._failed)}
            priced, best, totals = _decide_with_disk_cache(
                self._tape, self._config, CostModel.load(), options,
                lambda c: best_tier(c, points=n, threads=threads, compiled=(current,)),
            )
            if best == current or totals[best] > (1 - _SYNC_MARGIN) * totals[current]:
                return
            self._begin(best)
            calls, points = _counts(fn)
        start = time.perf_counter()
        new, error = self._compile(best)
        self._finish(fn, best, f"bulk call of {n} points", calls, points, time.perf_counter() - start, new, error,
                     predicted=priced[best].compile_s)

    # -- internals ----------------------------------------------------------------------

    def _start_model(self, fn: CompiledFn) -> None:
        model, self._costs = _predictions(self._tape, self._config, usable_tiers())
        self._calibration = model.source
        self._rearm(fn)  # the work so far (on the interpreter) counts

    def _since_install(self, fn: CompiledFn) -> Tuple[int, int]:
        calls, points = _counts(fn)
        return calls - self._baseline[0], points - self._baseline[1]

    def _savings(self, current: str, calls: float, points: float,
                 costs: Optional[Dict[str, TierCost]] = None) -> List[Tuple[str, float, float]]:
        """(tier, predicted time ``calls`` and ``points`` would have saved on it, its
        compile time) for each faster tier not known to fail."""
        costs = costs or self._costs
        assert costs is not None
        cur = costs[current]
        out = []
        for t, c in costs.items():
            if _rank(t) > _rank(current) and t not in self._failed:
                saved = calls * max(0.0, cur.call_s - c.call_s) + points * max(0.0, cur.point_s - c.point_s)
                out.append((t, saved, c.compile_s))
        return out

    def _adjusted(self, fn: CompiledFn) -> Dict[str, TierCost]:
        """The model's costs with bulk costs corrected by what this function measured: a
        tier it has run enough one-thread bulk work on is scaled to its measured time per
        point; the others by the ratio measured / predicted of the current tier (else of
        the fastest measured one), the model's error for this function (the memory
        traffic of many outputs, a working set beyond the cache, ...)."""
        assert self._costs is not None
        costs = dict(self._costs)
        ratios: Dict[str, float] = {}
        for t, (calls, points, seconds) in self._measurements(fn).items():
            if t in costs:
                c, n = costs[t], points // calls
                predicted = c.point_at(n) + c.bulk_call_s / n
                if predicted > 0:
                    ratios[t] = (seconds / points) / predicted
        if not ratios:
            return costs
        current = fn.tier
        default = ratios.get(current) or ratios[max(ratios, key=_rank)]
        for t, c in costs.items():
            r = ratios.get(t, default)
            costs[t] = replace(c, point_s=c.point_s * r, large_point_s=c.large_point_s * r, bulk_call_s=c.bulk_call_s * r)
        return costs

    def _measurements(self, fn: CompiledFn) -> Dict[str, Tuple[int, int, float]]:
        """``{tier: (calls, points, seconds)}`` of one-thread bulk work measured on each
        tier this function ran, for the tiers with enough of it to go by."""
        return {t: m for t, m in fn._measured().items()
                if m[1] >= _MIN_MEASURED_POINTS and (m[0] >= _MIN_MEASURED_CALLS or m[2] >= _MIN_MEASURED_S)}

    def _measured_point_s(self, fn: CompiledFn) -> Dict[str, float]:
        """Measured one-thread seconds per point of each tier with enough bulk work."""
        return {t: seconds / points for t, (_, points, seconds) in self._measurements(fn).items()}

    def _verify(self, fn: CompiledFn) -> bool:
        """Undoes the last tier-up if the new tier measured slower per point than the
        tier it replaced (lock held); True if it did."""
        previous = self._unverified
        if previous is None:
            return False
        measured = self._measured_point_s(fn)
        current = fn.tier
        if current not in measured or previous not in measured:
            return False
        self._unverified = None
        new, old = measured[current], measured[previous]
        if new <= _SLOWER * old:
            return False
        fn._restore(previous)
        self._failed.add(current)
        calls, points = _counts(fn)
        self._baseline = (calls, points)
        self._tier_ups.append(TierUp(current, previous, "measured slower: undone", calls, points, 0.0, 0.0,
                                     f"{current} measured {new * 1e9:.2f} ns per point, {previous} {old * 1e9:.2f}"))
        return True

    def _rearm(self, fn: CompiledFn) -> None:
        """Sets the meter to report when some faster tier may have paid for its compile
        (lock held). The meter counts predicted time on the current tier; the check
        itself (``on_threshold``) uses the actual counts of calls and points."""
        current = fn.tier
        costs = self._adjusted(fn)
        cur = costs[current]
        calls, points = self._since_install(fn)
        spent = calls * cur.call_s + points * cur.point_s
        # For each tier, the share of the current tier's time it saves, under the use seen
        # so far and under each kind of use alone: use can change (scalar calls first,
        # then bulk work), and the earliest break-even of any of them arms the meter.
        mixes = ([(calls, points)] if calls or points else []) + [(1, 0), (0, 1)]
        due = math.inf
        for c, p in mixes:
            per_unit = c * cur.call_s + p * cur.point_s
            for _, saved, compile_s in self._savings(current, c, p, costs):
                if saved > 0:
                    due = min(due, _BACKGROUND_AT * compile_s * per_unit / saved)
        if self._unverified is not None:
            # A new tier is compared with the one it replaced after some bulk work.
            due = min(due, 4 * _MIN_MEASURED_POINTS * cur.point_s)
        if math.isinf(due):
            fn._rearm(0, 0, _NEVER, _NEVER)
            return
        # Never check again before the work has grown by half: O(log) checks in all.
        threshold = due if self._unverified is not None else max(due, 1.5 * spent) - spent
        # The smallest bulk call that could pay for a compile by itself (per-point savings
        # taken at their largest, in cache or not, so no such call is missed).
        n_star = math.inf
        for t, cost in costs.items():
            if _rank(t) > _rank(current) and t not in self._failed:
                saving = max(cur.point_s - cost.point_s,
                             (cur.large_point_s or cur.point_s) - (cost.large_point_s or cost.point_s))
                if saving > 0:
                    n_star = min(n_star, cost.compile_s / saving)
        sync = _NEVER if math.isinf(n_star) else max(1, min(_NEVER - 1, math.ceil(n_star)))
        fn._rearm(max(1, _units(cur.call_s)), max(1, _units(cur.point_s)), max(1, _units(threshold)), sync)

    def _next_tier(self, fn: CompiledFn, costs: Dict[str, TierCost]) -> Optional[str]:
        calls, points = self._since_install(fn)
        options = [(compile_s / saved, t) for t, saved, compile_s in self._savings(fn.tier, calls or 1, points, costs)
                   if saved > 0]
        return min(options)[1] if options else None

    def _begin(self, tier: str) -> None:
        """Marks a compile of ``tier`` in flight (lock held)."""
        fn = self._fn()
        self._compiling, self._compiling_from = tier, fn.tier if fn is not None else tier
        with _IDLE:
            _IN_FLIGHT.add(self)

    def _compile(self, tier: str, into: Optional[CompiledFn] = None) -> Tuple[Optional[CompiledFn], Optional[str]]:
        try:
            return compile_tier(self._tape, self._names, self._config, tier, into=into), None
        except (AlkahestError, ImportError) as e:
            return None, f"{type(e).__name__}: {e}"

    def _compile_in_background(self, tier: str, calls: int, points: int) -> None:
        """The one background compile path, for every tier: the tier's own compile on this
        thread (native compilers release the GIL), then the same install as a bulk call's
        tier-up. The thread runs at a lower priority, so that on a machine with few cores
        the calls it is meant to speed up keep their core."""
        _lower_this_threads_priority()
        fn = self._fn()
        if fn is None:
            self._end()
            return
        start = time.perf_counter()
        try:
            new, error = self._compile(tier, into=fn)
        except Exception as e:  # a bug, not a tier's refusal: recorded, and never left in flight
            new, error = None, f"{type(e).__name__}: {e}"
            threading.excepthook(threading.ExceptHookArgs((type(e), e, e.__traceback__, threading.current_thread())))
        self._finish(fn, tier, "background", calls, points, time.perf_counter() - start, new, error)

    def _finish(self, fn: CompiledFn, tier: str, trigger: str, calls: int, points: int, seconds: float,
                new: Optional[CompiledFn], error: Optional[str], predicted: Optional[float] = None) -> None:
        installed = False
        with self._lock:
            from_tier = self._compiling_from
            if predicted is None:
                predicted = self._costs[tier].compile_s if self._costs else float("nan")
            if new is not None and fn.tier == tier:
                installed = True  # the tier's compile switched the function over itself
            elif new is not None and _rank(tier) > _rank(fn.tier):
                fn._install(new)
                installed = True
            if installed:
                self._baseline = _counts(fn)
                self._tier_ups.append(TierUp(from_tier, tier, trigger, calls, points, predicted, seconds))
                # Bulk speed measured on the old tier: the new one must match it, else undone.
                self._unverified = from_tier if from_tier in self._measured_point_s(fn) else None
            elif error is not None:
                self._failed.add(tier)
                self._tier_ups.append(TierUp(from_tier, tier, trigger, calls, points, predicted, seconds, error))
            self._compiling = None
            self._rearm(fn)
        self._end()

    def _end(self) -> None:
        with self._lock:
            self._compiling = None
        with _IDLE:
            _IN_FLIGHT.discard(self)
            _IDLE.notify_all()

    def report(self) -> DispatchReport:
        fn = self._fn()
        if fn is None:
            raise ReferenceError("the function this controller served is gone")
        with self._lock:
            if self._costs is None:
                self._start_model(fn)
            calls, points = _counts(fn)
            since = self._since_install(fn)
            costs = self._adjusted(fn)
            nxt = self._next_tier(fn, costs)
            progress = (0.0, 0.0)
            if nxt is not None:
                progress = {t: (s, c) for t, s, c in self._savings(fn.tier, *since, costs)}[nxt]
            return DispatchReport(
                self._fn_name, fn.tier, True,
                "adaptive: started on the interpreter; compiles a faster tier once its use pays for the compile",
                dict(self._costs or {}), {}, calls, points, tuple(self._tier_ups), self._compiling,
                nxt, progress, self._calibration, self._measured_point_s(fn),
            )


_IDLE = threading.Condition()
_IN_FLIGHT: "weakref.WeakSet[Controller]" = weakref.WeakSet()
_CONTROLLERS: "weakref.WeakSet[Controller]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked child has only the thread that forked: background compiles in flight in
    the parent will never finish here, and a lock another thread held stays held. Forget
    those compiles (the child's functions tier up anew) and give every controller a
    fresh lock."""
    global _IDLE
    _IDLE = threading.Condition()
    for c in list(_CONTROLLERS):
        c._lock = threading.Lock()
        c._compiling = None
    _IN_FLIGHT.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def wait_for_tier_ups(timeout: Optional[float] = None) -> bool:
    """Waits until no adaptive function is compiling a tier in the background (for
    tests and benchmarks; normal code never needs to). False if ``timeout`` passed first."""
    with _IDLE:
        return _IDLE.wait_for(lambda: not _IN_FLIGHT, timeout)


def explain(fn: CompiledFn) -> DispatchReport:
    """Why ``fn`` runs on its tier: the predicted costs per tier, the choice and, for an
    adaptive function, its work so far and tier-ups. ``print(explain(f))`` shows a table.

    >>> print(alkahest.explain(compile_expr(x + 1, [x])))  # doctest: +SKIP
    """
    if not isinstance(fn, CompiledFn):
        raise ArgumentTypeError(f"explain() takes a CompiledFn, got {type(fn).__name__}")
    report = fn.dispatch_report()
    if report is None:
        raise ArgumentError("this function was not made by compile_expr, so there is no dispatch to explain")
    variant = fn._float32_variant
    return replace(report, dtype=fn.dtype, float32_variant=explain(variant) if variant is not None else None,
                   optimization=_OPTIMIZATIONS.get(fn))


#: What ``CompileConfig(optimize=...)`` did, per function it made (for ``explain``).
_OPTIMIZATIONS: "weakref.WeakKeyDictionary[CompiledFn, Any]" = weakref.WeakKeyDictionary()


def remember_optimization(fn: CompiledFn, report: Any) -> CompiledFn:
    """Records ``report`` (an ``OptimizeReport``, or None) as how ``fn``'s expressions were
    rewritten; returns ``fn``."""
    if report is not None:
        _OPTIMIZATIONS[fn] = report
    return fn
