"""The LLVM tier's own behaviour: within 4.5 ulp of mpmath, staging, fastmath,
inspection, fallback, opt levels, threads. (What every compiled tier shares:
test_native_tiers.py; the disk cache: test_llvm_cache.py.)"""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import example, given

import alkahest as ak
from reference import assert_close
from strategies import SETTINGS, canonical_bits, points, setup_case, spilling_model, trees

pytest.importorskip("llvmlite", reason="the LLVM tier needs llvmlite (in requirements-dev.txt)")

from alkahest.backends import llvm as llvm_tier  # noqa: E402
from alkahest.backends.llvm import irgen, target  # noqa: E402
from alkahest.backends.tapeview import FusedStage, Instr, Plan, TapeView  # noqa: E402

INTERP = {vm: ak.CompileConfig(tier="interpreter", vector_math=vm) for vm in (True, False)}
LLVM = {vm: ak.CompileConfig(tier="llvm", vector_math=vm, cache_dir=False) for vm in (True, False)}


def _pair(exprs, syms, vm):
    f = ak.compile_expr(exprs, syms, INTERP[vm], cache=False)
    g = ak.compile_expr(exprs, syms, LLVM[vm], cache=False)
    assert (f.tier, g.tier, g.fallback_reason) == ("interpreter", "llvm", None)
    return f, g


def _same(u, v):
    return canonical_bits(u) == canonical_bits(v)


@SETTINGS
@given(trees, points)
# Found by a thorough run: cos of a 16th power near 2e15, whose argument is radians off.
@example(("powi", ("unary", "cos", ("powi", ("sym", 1), 16)), -3), [(0.0, 0.0, 0.0), (0.0, 9.0625, 0.0)])
def test_within_4_5_ulp_per_function_of_mpmath(tree, pts):
    # Bound: every transcendental node may be 4 ulp (libmvec's documented bound) from the
    # true value plus 0.5 ulp for rounding the mpmath reference; arithmetic 1 ulp; errors
    # of arguments propagate to first order (tests/reference.py). No further slack.
    syms, inputs, expr, ref = setup_case(tree, pts, use_mpmath=True)
    g = ak.compile_expr(expr, syms, LLVM[True], cache=False)
    assert_close(ak.numpy_eval(g, *inputs), ref, "llvm bulk vs mpmath", slack=1.0)
    assert_close(np.array([g(*p) for p in zip(*inputs)]), ref, "llvm scalar vs mpmath", slack=1.0)


def test_many_vector_calls_run_staged_and_few_inline(xy):
    x, y = xy
    few = ak.compile_expr([ak.sin(x) * ak.cos(y) + ak.exp(-x * x)], [x, y], LLVM[True], cache=False)
    many = ak.compile_expr([ak.sin(x * k) for k in range(1, 8)], [x], LLVM[True], cache=False)
    libm = ak.compile_expr([ak.sin(x * k) for k in range(1, 8)], [x], LLVM[False], cache=False)
    assert not few.backend.shape.staged  # few calls: inline in one fused loop
    assert many.backend.shape.staged  # many vector-math calls: one loop per call
    assert not libm.backend.shape.staged  # no vector math: nothing to stage


def test_fastmath_contracts_and_stays_accurate(xy):
    x, y = xy
    e = ((x * 1.5 + y) * x + 0.25) * x + y * y
    fast = ak.compile_expr(e, [x, y], ak.CompileConfig(tier="llvm", fastmath=True, cache_dir=False), cache=False)
    exact = ak.compile_expr(e, [x, y], LLVM[True], cache=False)
    assert fast.tier == "llvm" and "contract" in fast.llvm_ir()
    assert "contract" not in exact.llvm_ir() and "reassoc" not in exact.llvm_ir()
    if "fma" in target.host().features.replace("-fma", ""):
        assert "vfmadd" in fast.asm() and "vfmadd" not in exact.asm()
    a, b = np.linspace(-3, 3, 1001), np.linspace(2, -1, 1001)
    np.testing.assert_allclose(ak.numpy_eval(fast, a, b), ak.numpy_eval(exact, a, b), rtol=1e-13, atol=1e-13)


def test_inspection_shows_the_vector_code(xy):
    x, y = xy
    f = ak.compile_expr(ak.sin(x) + y, [x, y], LLVM[True], cache=False)
    host = target.host()
    w = host.width
    ir = f.llvm_ir()
    assert "define void @alkahest_bulk" in ir and "define void @alkahest_scalar" in ir
    assert f"<{w} x double>" in ir and f.source() == ir
    if "sin" in host.vector_fns:
        assert host.vector_fns["sin"][0] in ir  # libmvec called directly, w lanes at a time
    assert "alkahest_bulk" in f.asm()
    assert isinstance(f.backend, llvm_tier.LLVMModule) and f.backend.shape.width == w
    with pytest.raises(AttributeError, match="llvm_ir"):
        ak.compile_expr(x + y, [x, y], INTERP[True], cache=False).llvm_ir()


def test_missing_llvmlite_falls_back_to_cranelift(xy, monkeypatch):
    x, y = xy

    def no_llvmlite():
        raise ImportError("No module named 'llvmlite'")

    monkeypatch.setattr(target, "llvm", no_llvmlite)
    f = ak.compile_expr(x * y, [x, y], LLVM[True], cache=False)
    assert f.tier == "cranelift"
    assert f.fallback_reason.startswith("llvm: llvmlite is not installed")
    assert f(2.0, 3.0) == 6.0


def test_unknown_operation_is_refused_before_llvm_sees_it():
    plan = Plan((FusedStage((1,)),), (None, None), ((),), 256 * 1024, ((0, 1),), ((0, 2),), {})
    view = TapeView(1, [], [Instr("input", (), 0), Instr("gamma", (0,), -1)], [1], plan)
    with pytest.raises(irgen.UnsupportedTape, match="gamma"):
        irgen.generate(view, irgen.CodeShape(width=4, interleave=1))


def test_spill_and_buffers_in_the_heap_frame_when_the_stack_budget_is_small(monkeypatch):
    # With a 4 KiB stack budget, the scalar entry's spill area (thousands of values
    # crossing chunks) and the bulk entry's buffers come from the thread's heap frame, as
    # they do for models of ~10^5 operations with the real 256 KiB budget.
    plan_of = llvm_tier._plan

    def small_stack(tape, config):
        view, shape, _ = plan_of(tape, config)
        return dataclasses.replace(view, plan=dataclasses.replace(view.plan, stack_budget=4096)), shape, None

    monkeypatch.setattr(llvm_tier, "_plan", small_stack)
    outs, syms = spilling_model(3000)
    f, g = _pair(outs, syms, True)
    view, shape, _ = llvm_tier._plan(ak.lower(outs, syms), LLVM[True])
    scalar_entry = irgen.generate(view, shape).split("define void @alkahest_scalar(")[1].split("}")[0]
    assert "call ptr @alkahest_frame" in scalar_entry
    for point in ((0.5, -0.25), (1e300, 3.0)):
        assert _same(g(*point), f(*point)), point
    xs = np.linspace(-2, 2, 1001)
    assert _same(ak.numpy_eval(g, xs, xs[::-1]), ak.numpy_eval(f, xs, xs[::-1]))


def test_tapes_over_max_ops_are_refused_up_front(monkeypatch, xy):
    x, y = xy
    monkeypatch.setattr(llvm_tier, "MAX_OPS", 50)
    e = x
    for k in range(60):
        e = e * y + k
    f = ak.compile_expr(e, [x, y], LLVM[True], cache=False)
    assert f.tier == "cranelift" and f.fallback_reason.startswith("llvm: the tape has 120 operations")
    assert "at most 50" in f.fallback_reason


def test_config_validation():
    with pytest.raises(ValueError, match="opt_level"):
        ak.CompileConfig(tier="llvm", opt_level=4)
    with pytest.raises(TypeError, match="cache_dir"):
        ak.CompileConfig(tier="llvm", cache_dir=3)
    assert "llvm" in ak.AVAILABLE_TIERS


@pytest.mark.parametrize("opt", [0, 1, 3])
def test_every_opt_level_computes_the_same(xy, opt):
    x, y = xy
    e = ak.sin(x) * y + x**5 - ak.where(x > y, ak.sqrt(ak.abs(x)), y)
    f = ak.compile_expr(e, [x, y], ak.CompileConfig(tier="llvm", opt_level=opt, cache_dir=False), cache=False)
    g = ak.compile_expr(e, [x, y], INTERP[True], cache=False)
    a, b = np.linspace(-3, 3, 999), np.linspace(1, -2, 999)
    assert f.tier == "llvm" and _same(ak.numpy_eval(f, a, b), ak.numpy_eval(g, a, b))


def test_stage_loops_are_optimised_only_at_opt_level_3(pool):
    x, y = pool.symbols("x y")
    e = x
    for k in range(8):
        e = ak.sin(e * 0.5 + y) + ak.tanh(x * k - e)
    a, b = np.linspace(-2, 2, 1003), np.linspace(1, -1, 1003)
    want = ak.numpy_eval(ak.compile_expr(e, [x, y], INTERP[True], cache=False), a, b)
    for opt, quick in ((2, True), (3, False)):
        f = ak.compile_expr(e, [x, y], ak.CompileConfig(tier="llvm", opt_level=opt, cache_dir=False), cache=False)
        assert f.backend.shape.staged and f.backend.shape.quick_stages == quick
        assert (") #4 {" in f.llvm_ir()) == quick  # #4: the optnone attribute group
        assert _same(ak.numpy_eval(f, a, b), want)


def test_compiles_from_several_threads(xy):
    from concurrent.futures import ThreadPoolExecutor

    x, y = xy
    exprs = [ak.sin(x * k) + y**k for k in range(2, 14)]
    with ThreadPoolExecutor(4) as ex:
        fns = list(ex.map(lambda e: ak.compile_expr(e, [x, y], LLVM[True], cache=False), exprs))
    for k, f in zip(range(2, 14), fns):
        # Every function on LLVM (no silent fallback), each with its own expression's value.
        assert f.tier == "llvm", f.fallback_reason
        assert math.isclose(f(0.5, 1.5), math.sin(0.5 * k) + 1.5**k, rel_tol=1e-15)


