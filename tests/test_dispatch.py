"""Tier dispatch: the cost model, auto resolution, adaptive tier-up, overrides, explain."""

import copy
import dataclasses
import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import alkahest as ak
from alkahest import costmodel, dispatch, errors, tiers
from alkahest.costmodel import SHIPPED, CostModel, Features

NATIVE = [t for t in ("cranelift", "llvm") if t in ak.AVAILABLE_TIERS]


def shipped():
    return json.loads(SHIPPED.read_text())


def write_calibration(path, cal):
    path.write_text(json.dumps(cal))
    costmodel.forget_loaded()
    return path


def favour(cal, tier, compile_s=1e-6, point_s=1e-12, call_s=1e-9):
    """A calibration where ``tier`` compiles in no time and runs far faster than the rest."""
    cal = copy.deepcopy(cal)
    entries = cal["compile"][tier]
    for entry in ([entries[k] for k in "0123"] if tier == "llvm" else [entries]):
        entry.update(base=compile_s, per_op=0.0, per_call=0.0)
    if tier == "llvm":
        entries["startup"] = 0.0
    for section in ("bulk_vector_math", "bulk_libm"):
        b = cal[section][tier]
        b.update(point=point_s, input=0.0, output=0.0)
        b["ops"] = {"default": 0.0}
        if b.get("large"):  # arrays beyond the cache: as fast
            b["large"].update(point=point_s, input=0.0, output=0.0)
    cal["scalar"][tier].update(call=call_s, ops={"default": 0.0})
    return cal


@pytest.fixture
def calibration(tmp_path, monkeypatch):
    """Sets ALKAHEST_CALIBRATION to a file the test writes: ``calibration(dict)``."""

    def use(cal):
        path = write_calibration(tmp_path / "cal.json", cal)
        monkeypatch.setenv("ALKAHEST_CALIBRATION", str(path))
        return path

    yield use
    costmodel.forget_loaded()


@pytest.fixture
def trig(pool):
    x, y = pool.symbols("x y")
    return ak.sin(x) * ak.cos(y) + ak.exp(-x * x), [x, y]


def reference(expr, vars, *arrays):
    return ak.numpy_eval(ak.compile_expr(expr, vars, ak.CompileConfig(tier="interpreter")), *arrays)


# --- the cost model -----------------------------------------------------------------


def test_shipped_calibration_loads_and_predicts_every_tier(trig):
    model = CostModel.load(SHIPPED)
    feats = Features.of(ak.lower(*trig))
    assert feats.n_inputs == 2 and feats.n_outputs == 1 and feats.n_vector_calls == 3
    costs = model.predict_all(feats, ak.KNOWN_TIERS)
    for c in costs.values():
        assert c.compile_s >= 0 and c.call_s > 0 and c.point_s > 0
    # What the tiers are for: compiling costs more going up, evaluating arithmetic less.
    assert costs["interpreter"].compile_s < costs["cranelift"].compile_s < costs["llvm"].compile_s
    x, y = trig[1]
    poly = model.predict_all(Features.of(ak.lower(((x * 1.5 + 2.0) * x + 3.0) * x + y, [x, y])), ak.KNOWN_TIERS)
    assert poly["llvm"].point_s < poly["interpreter"].point_s
    # a bigger tape costs more to compile and to run
    big = Features.of(ak.lower(sum((ak.sin(x * k) for k in range(1, 40)), y), [x, y]))
    assert model.predict(big, "llvm").compile_s > costs["llvm"].compile_s
    assert model.predict(big, "interpreter").point_s > costs["interpreter"].point_s


def test_expected_work_must_be_a_count():
    for bad in (-1, 2.5, True, "10"):
        with pytest.raises(ValueError, match="expected_calls"):
            ak.CompileConfig(expected_calls=bad)
        with pytest.raises(ValueError, match="expected_evals"):
            ak.CompileConfig(expected_evals=bad)
    assert ak.CompileConfig(expected_calls=0).knows_work and not ak.CompileConfig().knows_work


def test_bulk_time_splits_over_threads_only_for_enough_points():
    c = costmodel.TierCost("x", 0.0, 0.0, 1e-9, 1e-6)
    assert c.bulk_s(1000, threads=4) == c.bulk_s(1000, threads=1)
    assert c.bulk_s(10**7, threads=2) == pytest.approx(1e-6 + 10**7 * 1e-9 / 2)


def test_wide_functions_leave_the_cache_at_fewer_points():
    # What leaves the cache is bytes: 200 arrays at 20,000 points take what 2 arrays take
    # at 2 million.
    narrow = costmodel.TierCost("x", 0.0, 0.0, 1e-9, 1e-6, large_point_s=4e-9, arrays=2)
    wide = dataclasses.replace(narrow, arrays=200)
    assert narrow.point_at(10_000) == 1e-9 and wide.point_at(20_000) == 4e-9
    assert 1e-9 < wide.point_at(2_000) < 4e-9 and narrow.point_at(2_000) == 1e-9
    assert narrow.point_at(1 << 21) == wide.point_at(1 << 21) == 4e-9


def test_scalar_calls_are_priced_per_argument_and_result():
    pool = ak.ExprPool()
    xs = pool.symbols(" ".join(f"x{i}" for i in range(100)))
    model = costmodel.CostModel.load()
    one = model.predict(costmodel.Features.of(ak.lower([xs[0] * 2.0], [xs[0]])), "llvm").call_s
    wide = model.predict(costmodel.Features.of(ak.lower([x * 2.0 for x in xs], xs)), "llvm").call_s
    scalar = model.calibration["scalar"]["llvm"]
    assert scalar["input"] > 0 and scalar["output"] > 0
    assert wide - one == pytest.approx(99 * (scalar["input"] + scalar["output"]) + 99 * scalar["ops"]["mul"])


def test_scalar_calls_of_large_tapes_cost_more_per_operation():
    """Past SMALL_TAPE_OPS a call's code and values leave the caches: the calibrated
    large-tape scale applies, log-linearly up to the calibration tape's size."""
    large = {"ops": 4.0 * costmodel.SMALL_TAPE_OPS, "scale": 1.5}
    scale = costmodel._large_tape_scale
    assert scale(large, costmodel.SMALL_TAPE_OPS) == 1.0 and scale(None, 10**6) == 1.0
    assert scale(large, 2 * costmodel.SMALL_TAPE_OPS) == pytest.approx(1.25)
    assert scale(large, 4 * costmodel.SMALL_TAPE_OPS) == scale(large, 10**7) == pytest.approx(1.5)
    model = costmodel.CostModel.load()
    plain = copy.deepcopy(dict(model.calibration))
    for tier in ("interpreter", "cranelift"):
        entry = model.calibration["scalar"][tier].get("large")
        assert entry and entry["ops"] > costmodel.SMALL_TAPE_OPS and entry["scale"] >= 1.0  # calibrated
        del plain["scalar"][tier]["large"]
    unscaled = costmodel.CostModel(plain)
    x, = ak.ExprPool().symbols("x")
    small, big = (costmodel.Features.of(ak.lower([_chain(x, n)], [x])) for n in (1000, 40_000))
    for tier in ("interpreter", "cranelift"):
        entry = model.calibration["scalar"][tier]["large"]
        assert model.predict(small, tier).call_s == unscaled.predict(small, tier).call_s
        assert model.predict(big, tier).call_s == pytest.approx(
            unscaled.predict(big, tier).call_s * scale(entry, big.n_ops))


def _chain(x, n):
    e = x
    for k in range(n):
        e = e * 1.0001 + 0.5 if k % 2 else ak.sin(e)
    return e


@pytest.mark.parametrize("damage", ["garbage", "format", "missing"])
def test_unusable_calibration_file_is_a_clear_error(calibration, damage, trig, tmp_path):
    cal = shipped()
    if damage == "format":
        cal["format"] = 99
    elif damage == "missing":
        del cal["bulk_libm"]["cranelift"]
    path = calibration(cal)
    if damage == "garbage":
        path.write_text("{not json")
    with pytest.raises(errors.CalibrationError, match="alkahest.calibrate"):
        ak.compile_expr(*trig, ak.CompileConfig(expected_evals=10), cache=False)


def test_missing_calibration_file_names_the_variable(monkeypatch, tmp_path, trig):
    monkeypatch.setenv("ALKAHEST_CALIBRATION", str(tmp_path / "nope.json"))
    costmodel.forget_loaded()
    with pytest.raises(errors.CalibrationError, match="ALKAHEST_CALIBRATION"):
        ak.compile_expr(*trig, ak.CompileConfig(expected_evals=10), cache=False)
    costmodel.forget_loaded()


# --- auto with a stated amount of work ----------------------------------------------


@pytest.mark.parametrize("tier", NATIVE + ["interpreter"])
def test_a_synthetic_calibration_changes_the_decision(calibration, trig, tier):
    calibration(favour(shipped(), tier))
    for config in (ak.CompileConfig(expected_evals=10**6), ak.CompileConfig(expected_calls=10**5)):
        f = ak.compile_expr(*trig, config, cache=False)
        assert f.tier == tier and not f.adaptive
        report = ak.explain(f)
        assert report.tier == tier and "expected_" in report.reason
        assert min(report.totals, key=report.totals.get) == tier
        assert str(report).count("\n") >= 4


def test_auto_with_work_picks_the_least_predicted_total(trig):
    feats = Features.of(ak.lower(*trig))
    costs = CostModel.load().predict_all(feats, ak.AVAILABLE_TIERS)
    for evals in (1, 10**4, 10**8):
        want = min(costs, key=lambda t: costs[t].total_s(points=evals))
        f = ak.compile_expr(*trig, ak.CompileConfig(expected_evals=evals), cache=False)
        assert f.tier == want, (evals, {t: c.total_s(points=evals) for t, c in costs.items()})
    # one evaluation never pays for a compile
    assert ak.compile_expr(*trig, ak.CompileConfig(expected_evals=1), cache=False).tier == "interpreter"


@pytest.mark.skipif("llvm" not in ak.AVAILABLE_TIERS, reason="needs the LLVM tier")
def test_auto_prices_llvm_as_a_load_when_the_disk_cache_has_it(calibration, trig, tmp_path):
    cal = favour(shipped(), "llvm")
    for level in "0123":
        cal["compile"]["llvm"][level]["base"] = 10.0  # compiling never pays ...
    cal["compile"]["llvm"]["cached"] = {"base": 1e-4, "per_op": 0.0, "per_call": 0.0}  # ... loading does
    calibration(cal)
    warm, cold = tmp_path / "warm", tmp_path / "cold"
    ak.compile_expr(*trig, ak.CompileConfig(tier="llvm", cache_dir=warm), cache=False)  # fills the cache
    config = ak.CompileConfig(expected_evals=10**6, cache_dir=warm)
    f = ak.compile_expr(*trig, config, cache=False)
    assert f.tier == "llvm" and f.backend.loaded_from_cache
    assert "disk cache" in ak.explain(f).reason
    g = ak.compile_expr(*trig, ak.CompileConfig(expected_evals=10**6, cache_dir=cold), cache=False)
    assert g.tier != "llvm"
    h = ak.compile_expr(*trig, ak.CompileConfig(expected_evals=10**6, cache_dir=False), cache=False)
    assert h.tier != "llvm"


# --- adaptive functions --------------------------------------------------------------


def test_default_config_gives_an_adaptive_function_on_the_interpreter(trig):
    f = ak.compile_expr(*trig, cache=False)
    assert f.adaptive and f.tier == "interpreter"
    assert f._meter()[:2] == (0, 0)
    f(0.5, 0.25)
    ak.numpy_eval(f, np.zeros(10), 1.0)
    assert f._meter()[:2] == (1, 10)
    report = ak.explain(f)
    assert report.adaptive and set(report.predictions) == set(ak.AVAILABLE_TIERS)
    assert "adaptive" in str(report) and "1 scalar calls, 10 points" in str(report)
    assert "adaptive" in repr(f)


def test_explicit_tiers_are_not_adaptive_and_explain_themselves(trig):
    f = ak.compile_expr(*trig, ak.CompileConfig(tier="interpreter"), cache=False)
    assert not f.adaptive and f._meter() is None
    for _ in range(5000):
        f(0.5, 0.25)
    assert f.tier == "interpreter"
    assert "explicit" in ak.explain(f).reason
    with pytest.raises(TypeError):
        ak.explain("f")
    raw = ak._native.compile_interpreter(ak.lower(*trig), ["x", "y"])
    with pytest.raises(ValueError, match="not made by compile_expr"):
        ak.explain(raw)


@pytest.mark.skipif("cranelift" not in ak.AVAILABLE_TIERS, reason="needs the Cranelift tier")
def test_scalar_calls_tier_up_in_the_background(calibration, trig):
    cal = favour(shipped(), "cranelift", compile_s=1e-4, call_s=1e-9)
    cal["compile"]["llvm"]["startup"] = 1e3  # keep this test on Cranelift
    calibration(cal)
    f = ak.compile_expr(*trig, cache=False)
    want = f(0.3, 0.7)
    for _ in range(200_000):
        assert f(0.3, 0.7) == want
        if f.tier == "cranelift":
            break
    assert f.tier == "cranelift", ak.explain(f)
    assert dispatch.wait_for_tier_ups(timeout=30)
    (up,) = ak.explain(f).tier_ups
    assert (up.from_tier, up.to_tier, up.trigger, up.error) == ("interpreter", "cranelift", "background", None)
    assert up.calls > 0 and up.compile_s > 0
    assert "interpreter -> cranelift" in str(ak.explain(f))


@pytest.mark.skipif("llvm" not in ak.AVAILABLE_TIERS, reason="needs the LLVM tier")
def test_repeated_bulk_calls_end_on_llvm_with_correct_results(calibration, trig):
    # Cheap LLVM in the model; the calls (10k points each, under the sync size) must
    # add up to a background tier-up.
    cal = favour(shipped(), "llvm", compile_s=2e-3)
    calibration(cal)
    expr, vars = trig
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-3, 3, 10_000), rng.uniform(-3, 3, 10_000)
    want = reference(expr, vars, x, y)
    f = ak.compile_expr(expr, vars, cache=False)
    tiers = set()
    for _ in range(2000):
        np.testing.assert_array_equal(ak.numpy_eval(f, x, y), want)
        tiers.add(f.tier)
        if f.tier == "llvm":
            break
    assert f.tier == "llvm", ak.explain(f)
    assert dispatch.wait_for_tier_ups(timeout=60)
    np.testing.assert_array_equal(ak.numpy_eval(f, x, y), want)
    assert f.llvm_ir().startswith("; alkahest LLVM tier")  # the backend follows the installed tier
    assert ak.explain(f).tier_ups[-1].to_tier == "llvm"


@pytest.mark.skipif("llvm" not in ak.AVAILABLE_TIERS, reason="needs the LLVM tier")
def test_a_big_bulk_call_compiles_first_when_that_pays(calibration, trig):
    calibration(favour(shipped(), "llvm", compile_s=1e-4))
    expr, vars = trig
    x = np.linspace(-3, 3, 1 << 18)
    f = ak.compile_expr(expr, vars, cache=False)
    out = ak.numpy_eval(f, x, 0.5)
    assert f.tier == "llvm"  # decided and compiled before that call ran
    np.testing.assert_array_equal(out, reference(expr, vars, x, 0.5))
    (up,) = ak.explain(f).tier_ups
    assert up.trigger == f"bulk call of {1 << 18} points" and up.points == 0


def test_small_work_never_consults_the_model(trig, monkeypatch):
    calls = []
    monkeypatch.setattr(dispatch, "_predictions", lambda *a: calls.append(1) or (_ for _ in ()).throw(AssertionError))
    f = ak.compile_expr(*trig, cache=False)
    for _ in range(100):
        f(0.1, 0.2)
    ak.numpy_eval(f, np.zeros(100_000), 0.0)
    assert calls == [] and f.tier == "interpreter"


@pytest.mark.skipif(not NATIVE, reason="needs a native tier")
def test_concurrent_calls_during_tier_up_are_exact(calibration, trig):
    cal = shipped()
    for t in NATIVE:
        cal = favour(cal, t, compile_s=2e-4 * (1 + NATIVE.index(t)), point_s=1e-12 * (2 - NATIVE.index(t)))
    calibration(cal)
    expr, vars = trig
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-3, 3, 5000), rng.uniform(-3, 3, 5000)
    want = reference(expr, vars, x, y)
    interp = ak.compile_expr(expr, vars, ak.CompileConfig(tier="interpreter"))
    scalar_want = [interp(float(x[j]), float(y[j])) for j in range(50)]  # libm, not vector math
    f = ak.compile_expr(expr, vars, cache=False)
    errors_seen, tiers = [], set()

    def worker(k):
        try:
            # At least 300 calls, and on until the tier-up has landed (it compiles in the
            # background, so on a busy machine it can land after 300 calls), at most 20 s.
            deadline = time.monotonic() + 20
            i = 0
            while i < 300 or (f.tier == "interpreter" and time.monotonic() < deadline):
                i += 1
                if (i + k) % 2:
                    got = ak.numpy_eval_par(f, x, y, threads=2) if k % 2 else ak.numpy_eval(f, x, y)
                    if not np.array_equal(got, want):
                        errors_seen.append((k, i, f.tier))
                else:
                    j = i % 50
                    if f(float(x[j]), float(y[j])) != scalar_want[j]:
                        errors_seen.append((k, i, f.tier))
                tiers.add(f.tier)
        except Exception as e:  # noqa: BLE001 - any failure in a thread fails the test
            errors_seen.append(repr(e))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert dispatch.wait_for_tier_ups(timeout=60)
    assert errors_seen == []
    assert len(tiers) >= 2 and f.tier != "interpreter", (tiers, ak.explain(f))


@pytest.mark.skipif("llvm" not in ak.AVAILABLE_TIERS, reason="needs the LLVM tier")
def test_a_failed_tier_up_is_recorded_and_not_retried(calibration, trig, monkeypatch):
    calibration(favour(shipped(), "llvm", compile_s=1e-4))
    real = dispatch.compile_tier

    def broken(tape, names, config, tier, *rest, **kw):
        if tier == "llvm":
            raise errors.CompileError("simulated LLVM failure")
        return real(tape, names, config, tier, *rest, **kw)

    monkeypatch.setattr(dispatch, "compile_tier", broken)
    expr, vars = trig
    x = np.linspace(-1, 1, 1 << 18)
    f = ak.compile_expr(expr, vars, cache=False)
    want = reference(expr, vars, x, 0.5)
    for _ in range(3):
        np.testing.assert_array_equal(ak.numpy_eval(f, x, 0.5), want)
    assert dispatch.wait_for_tier_ups(timeout=30)
    failures = [u for u in ak.explain(f).tier_ups if u.error]
    assert len(failures) == 1 and "simulated LLVM failure" in failures[0].error
    assert f.tier != "llvm" and "failed" in str(ak.explain(f))


def test_dropping_a_function_mid_tier_up_is_safe(calibration, trig):
    calibration(favour(shipped(), NATIVE[0] if NATIVE else "interpreter", compile_s=1e-4))
    for _ in range(20):
        f = ak.compile_expr(*trig, cache=False)
        ak.numpy_eval(f, np.zeros(1 << 17), 0.0)
        for _ in range(3000):
            f(0.1, 0.2)
        del f
    assert dispatch.wait_for_tier_ups(timeout=60)


@pytest.mark.parametrize("tier", NATIVE)
def test_exiting_during_a_background_compile_is_clean(calibration, tmp_path, tier):
    path = calibration(favour(shipped(), tier, compile_s=1e-5, call_s=1e-12))
    code = (
        "import alkahest as ak\n"
        "p = ak.ExprPool(); x = p.symbol('x')\n"
        "f = ak.compile_expr(sum((ak.sin(x * k) for k in range(1, 60)), x), [x], cache=False)\n"
        "for _ in range(5000): f(0.5)\n"
        "print('exiting', flush=True)\n"
    )
    env = {**__import__("os").environ, "ALKAHEST_CALIBRATION": str(path)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0 and "exiting" in run.stdout, run.stderr


# --- environment overrides -----------------------------------------------------------


@pytest.mark.skipif("cranelift" not in ak.AVAILABLE_TIERS, reason="needs the Cranelift tier")
def test_alkahest_tier_forces_every_compile(monkeypatch, trig):
    monkeypatch.setenv("ALKAHEST_TIER", "cranelift")
    for config in (ak.CompileConfig(), ak.CompileConfig(tier="interpreter"), ak.CompileConfig(expected_evals=1)):
        f = ak.compile_expr(*trig, config, cache=False)
        assert f.tier == "cranelift" and not f.adaptive
        assert "ALKAHEST_TIER" in ak.explain(f).reason
    monkeypatch.setenv("ALKAHEST_TIER", "fastest")
    with pytest.raises(errors.UnknownTierError, match="ALKAHEST_TIER"):
        ak.compile_expr(*trig, cache=False)


@pytest.mark.skipif(not NATIVE, reason="needs a native tier")
def test_disabled_tiers_are_never_used(monkeypatch, calibration, trig):
    calibration(favour(favour(shipped(), "llvm"), "cranelift"))
    monkeypatch.setenv("ALKAHEST_DISABLE_TIERS", "llvm, cranelift")
    f = ak.compile_expr(*trig, ak.CompileConfig(tier=NATIVE[-1]), cache=False)
    assert f.tier == "interpreter" and "disabled by $ALKAHEST_DISABLE_TIERS" in f.fallback_reason
    assert ak.compile_expr(*trig, ak.CompileConfig(expected_evals=10**9), cache=False).tier == "interpreter"
    g = ak.compile_expr(*trig, cache=False)
    ak.numpy_eval(g, np.zeros(1 << 18), 0.0)
    for _ in range(5000):
        g(0.1, 0.2)
    assert g.tier == "interpreter" and set(ak.explain(g).predictions) == {"interpreter"}
    monkeypatch.setenv("ALKAHEST_DISABLE_TIERS", "gpu")
    with pytest.raises(errors.UnknownTierError, match="ALKAHEST_DISABLE_TIERS"):
        ak.compile_expr(*trig, cache=False)


@pytest.mark.skipif("cranelift" not in ak.AVAILABLE_TIERS, reason="needs the Cranelift tier")
def test_tierup_can_be_switched_off(monkeypatch, calibration, trig):
    calibration(favour(shipped(), "cranelift", compile_s=1e-5, call_s=1e-12))
    monkeypatch.setenv("ALKAHEST_TIERUP", "0")
    f = ak.compile_expr(*trig, cache=False)
    for _ in range(20_000):
        f(0.1, 0.2)
    assert dispatch.wait_for_tier_ups(timeout=30)
    assert f.tier == "interpreter" and ak.explain(f).tier_ups == ()


# --- calibration ---------------------------------------------------------------------


def test_calibrate_writes_a_file_the_model_reads(tmp_path):
    out = tmp_path / "cal.json"
    run = subprocess.run([sys.executable, "-m", "alkahest.calibrate", "--quick", "--output", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert f"calibration written to {out}" in run.stderr
    model = CostModel.load(out)
    cal = model.calibration
    assert cal["machine"]["quick"] is True and cal["machine"]["seconds"] > 0
    for tier in ak.AVAILABLE_TIERS:
        assert cal["bulk_vector_math"][tier]["ops"]["sin"] > 0
        assert cal["scalar"][tier]["call"] > 0
    assert cal["compile"]["cranelift"]["per_op"] > 0


def test_scalar_use_then_bulk_work_reaches_the_fastest_tier():
    """300,000 scalar calls tier up to Cranelift; bulk work that follows must still reach
    LLVM (the meter is armed for every kind of use, not only the use seen so far)."""
    if "llvm" not in ak.AVAILABLE_TIERS:
        pytest.skip("needs llvmlite")
    pool = ak.ExprPool()
    x = pool.symbol("x")
    f = ak.compile_expr(sum((k + 1.5) * x**k for k in range(11)), [x], ak.CompileConfig(cache_dir=False), cache=False)
    for _ in range(300_000):
        f(0.3)
    dispatch.wait_for_tier_ups(timeout=60)
    assert f.tier == "cranelift"
    xs = np.random.default_rng(0).random(100_000)
    for _ in range(2000):  # the saving passes half of LLVM's compile time after ~2e7 points
        ak.numpy_eval(f, xs)
        if f.tier == "llvm":
            break
        dispatch.wait_for_tier_ups(timeout=60)
    assert f.tier == "llvm", str(ak.explain(f))
    report = ak.explain(f)
    assert "cranelift" in report.measured and "measured bulk/point" in str(report)


def test_a_tier_up_measured_slower_is_undone(monkeypatch):
    """The controller compares the bulk speed it measures on a new tier with the tier it
    replaced; slower by more than 10%, it goes back and does not try that tier again."""
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    poly = sum((k + 1.5) * x**k for k in range(11)) * y  # arithmetic: Cranelift predicted faster
    f = ak.compile_expr(poly, [x, y], ak.CompileConfig(cache_dir=False), cache=False)
    real = dispatch.Controller._measurements

    def slower_cranelift(self, fn):
        out = dict(real(self, fn))
        if "cranelift" in out and "interpreter" in out:
            calls, points, _ = out["cranelift"]
            per_point = out["interpreter"][2] / out["interpreter"][1]
            out["cranelift"] = (calls, points, 3 * per_point * points)  # as if 3x slower
        return out

    monkeypatch.setattr(dispatch.Controller, "_measurements", slower_cranelift)
    monkeypatch.setenv("ALKAHEST_DISABLE_TIERS", "llvm")
    xs = np.linspace(-2, 2, 1 << 16)  # below the size that compiles before the call: a background tier-up
    want = ak.numpy_eval(ak.compile_expr(poly, [x, y], ak.CompileConfig(tier="interpreter")), xs, 0.5)
    seen = set()
    for _ in range(200):
        assert ak.numpy_eval(f, xs, 0.5).tobytes() == want.tobytes()
        seen.add(f.tier)
        dispatch.wait_for_tier_ups(timeout=60)
        if "cranelift" in seen and f.tier == "interpreter":
            break
    assert seen == {"interpreter", "cranelift"} and f.tier == "interpreter", str(ak.explain(f))
    undone = [u for u in ak.explain(f).tier_ups if u.trigger.startswith("measured slower")]
    assert len(undone) == 1 and undone[0].from_tier == "cranelift" and "ns per point" in undone[0].error
    for _ in range(20):  # never retried
        ak.numpy_eval(f, xs, 0.5)
    dispatch.wait_for_tier_ups(timeout=60)
    assert f.tier == "interpreter"


def test_a_bug_in_a_background_compile_is_recorded_and_never_left_in_flight(calibration, trig, monkeypatch):
    calibration(favour(shipped(), NATIVE[0] if NATIVE else "interpreter", compile_s=1e-4))
    if not NATIVE:
        pytest.skip("no compiled tier in this installation")

    real = dispatch.compile_tier

    def buggy(tape, names, config, tier, *rest, **kw):
        if tier == tiers.FLOOR.name:
            return real(tape, names, config, tier, *rest, **kw)
        raise TypeError("simulated bug")

    monkeypatch.setattr(dispatch, "compile_tier", buggy)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # reported, not printed here
    f = ak.compile_expr(*trig, cache=False)
    for i in range(20_000):
        f(0.001 * i, 0.5)
    assert dispatch.wait_for_tier_ups(timeout=30), "a background compile stayed in flight"
    failures = [u for u in ak.explain(f).tier_ups if u.error]
    assert failures and "TypeError: simulated bug" in failures[0].error and f.tier == "interpreter"
