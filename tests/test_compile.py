"""compile_expr, eval_expr, lower, CompileConfig and the scalar calling convention."""

import math

import numpy as np
import pytest

import alkahest as ak
from alkahest import errors


def test_single_output_returns_float(xy):
    x, y = xy
    f = ak.compile_expr(x**2 + ak.sin(y), [x, y])
    assert f(3.0, 0.0) == 9.0
    assert f([3.0, 0.0]) == 9.0
    assert f((3.0, 0.5)) == 9.0 + math.sin(0.5)
    assert f(np.array([3.0, 0.0])) == 9.0
    assert isinstance(f(1.0, 1.0), float)
    assert (f.tier, f.n_inputs, f.n_outputs, f.fallback_reason) == ("interpreter", 2, 1, None)
    assert f.var_names == ["x", "y"]


def test_several_outputs_return_tuple(xy):
    x, y = xy
    f = ak.compile_expr([x + y, x * y, x], [x, y])
    assert f(2.0, 3.0) == (5.0, 6.0, 2.0)
    assert f.n_outputs == 3


def test_vars_may_be_names_or_a_single_symbol(xy):
    x, y = xy
    assert ak.compile_expr(x * 2, x)(4.0) == 8.0
    assert ak.compile_expr(x - y, ["y", "x"])(1.0, 3.0) == 2.0


def test_constant_expression_takes_no_arguments(pool):
    f = ak.compile_expr(pool.constant(2.5), [])
    assert f() == 2.5


def test_wrong_number_of_arguments(xy):
    x, y = xy
    f = ak.compile_expr(x + y, [x, y])
    with pytest.raises(errors.ArityError, match=r"f\(x, y\) takes 2 arguments, got 3"):
        f(1.0, 2.0, 3.0)
    with pytest.raises(errors.ArityError):
        f([1.0])
    with pytest.raises(errors.ArityError):
        f()
    with pytest.raises(TypeError, match="must be a real number"):
        f(1.0, "a")


def test_bad_vars(xy):
    x, y = xy
    with pytest.raises(errors.InvalidVarsError, match="appears twice"):
        ak.compile_expr(x + y, [x, y, x])
    with pytest.raises(errors.InvalidVarsError, match="not a symbol"):
        ak.compile_expr(x + y, [x, x + y])
    with pytest.raises(errors.InvalidVarsError, match="not a symbol"):
        ak.compile_expr(x + y, [x, 3.0])
    with pytest.raises(errors.UnboundSymbolError, match="'y'"):
        ak.compile_expr(x + y, [x])
    with pytest.raises(TypeError):
        ak.compile_expr(3.0, [x])
    with pytest.raises(errors.ArityError, match="at least one output"):
        ak.compile_expr([], [x])


def test_eval_expr(xy):
    x, y = xy
    assert ak.eval_expr(x**2 + y, {x: 3.0, y: 1.0}) == 10.0
    assert ak.eval_expr(x**2 + y, {"x": 3.0, "y": 1.0}) == 10.0
    assert ak.eval_expr([x, y], {x: 1.0, y: 2.0}) == (1.0, 2.0)
    with pytest.raises(errors.UnboundSymbolError):
        ak.eval_expr(x + y, {x: 1.0})


def test_ieee_semantics_not_errors(xy):
    x, y = xy
    f = ak.compile_expr([x / y, ak.log(x), ak.sqrt(x)], [x, y])
    a, b, c = f(1.0, 0.0)
    assert a == math.inf
    a, b, c = f(-1.0, -0.0)
    assert a == math.inf and math.isnan(b) and math.isnan(c)
    assert math.isnan(ak.compile_expr(x + y, [x, y])(math.nan, 1.0))
    assert math.copysign(1.0, ak.compile_expr(-x, [x])(0.0)) == -1.0


def test_config_tiers():
    assert ak.CompileConfig().tier == "auto"
    with pytest.raises(errors.UnknownTierError, match="unknown tier 'fastest'"):
        ak.CompileConfig(tier="fastest")
    with pytest.raises(ValueError):
        ak.CompileConfig(expected_evals=-1)


def test_unavailable_tier_is_a_clear_error(xy, monkeypatch):
    # As on an installation without llvmlite: the registry says why, config agrees.
    import dataclasses

    from alkahest import config, tiers

    missing = dataclasses.replace(tiers.get("llvm"), unavailable=lambda: "it needs llvmlite: pip install llvmlite")
    monkeypatch.setattr(tiers, "_BY_NAME", {**tiers._BY_NAME, "llvm": missing})
    monkeypatch.setattr(config, "AVAILABLE_TIERS", ("interpreter", "cranelift"))
    x, _ = xy
    with pytest.raises(errors.TierUnavailableError, match="not available in this installation.*pip install llvmlite"):
        ak.compile_expr(x + 1, [x], ak.CompileConfig(tier="llvm"), cache=False)


def test_explicit_interpreter_tier(xy):
    x, _ = xy
    f = ak.compile_expr(x + 1, [x], ak.CompileConfig(tier="interpreter", expected_evals=10))
    assert f.tier == "interpreter"


def test_lower_exposes_the_tape(xy):
    x, y = xy
    t = ak.lower([x**2 + ak.sin(y), ak.sin(y) * 3.0], [x, y])
    ins = t.instructions()
    assert ins[:2] == [("input", (), 0), ("input", (), 1)]
    assert ("mul", (0, 0), -1) in ins  # x**2 expanded
    assert sum(1 for i in ins if i[0] == "sin") == 1  # shared across outputs
    assert t.n_inputs == 2 and t.n_outputs == 2 and len(t.outputs) == 2
    assert 3.0 in t.consts
    assert t.last_use[t.outputs[0]] == len(t)
    const_ops = [i for i in ins if i[0] == "const"]
    assert all(t.consts[i[2]] in (3.0,) for i in const_ops)
    assert "sin %1" in str(t)
    dead = ak.lower(x + 1, [x, y])
    assert dead.n_ops == 1


def test_integer_powers_large_and_negative(xy):
    x, _ = xy
    f = ak.compile_expr([x**-2, x**3, x**40, x**2.5], [x])
    r = f(1.5)
    assert r[0] == pytest.approx(1.5**-2, rel=1e-15)
    assert r[1] == pytest.approx(1.5**3, rel=1e-15)
    assert abs(r[2] - 1.5**40) <= math.ulp(1.5**40)  # compensated powering: ~0.5 ulp
    assert r[3] == 1.5**2.5
    assert any(ins[0] == "fma" for ins in ak.lower(x**40, [x]).instructions())


def test_source_shows_what_each_tier_runs(xy):
    x, y = xy
    e = x**2 + ak.sin(y)
    f = ak.compile_expr(e, [x, y], ak.CompileConfig(tier="interpreter"), cache=False)
    assert "interpreter" in f.source() and "sin %1" in f.source() and str(f.tape) in f.source()
    g = ak.compile_expr(e, [x, y], ak.CompileConfig(tier="cranelift"), cache=False)
    clif = g.source()
    assert "; alkahest_scalar" in clif and "; alkahest_bulk" in clif
    assert "fmul" in clif and "call" in clif and "f64x2" in clif
    assert g(1.5, 0.5) == f(1.5, 0.5)  # asking for the source leaves the function intact


@pytest.mark.parametrize("op", ["min", "max"])
def test_min_max_give_the_canonical_nan_in_every_tier(op, xy):
    # IEEE minimum/maximum return "a NaN"; copysign makes its sign visible, so every tier
    # returns the interpreter's f64::NAN (found by hypothesis: Cranelift's fmin gave -NaN,
    # LLVM's llvm.minimum passed the input NaN through).
    import struct

    x, z = xy
    neg_nan = struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000001))[0]
    canonical = struct.pack("<d", float("nan"))
    e = [ak.copysign(1.0, getattr(ak, op)(x, z)), getattr(ak, op)(x, z)]
    for tier in ak.AVAILABLE_TIERS:
        f = ak.compile_expr(e, [x, z], ak.CompileConfig(tier=tier, cache_dir=False), cache=False)
        for nan in (float("nan"), neg_nan):
            sign, value = f(0.0, nan)
            assert sign == 1.0 and struct.pack("<d", value) == canonical, tier
            signs, values = ak.numpy_eval(f, np.zeros(11), nan)
            assert (signs == 1.0).all() and all(struct.pack("<d", v) == canonical for v in values), tier
