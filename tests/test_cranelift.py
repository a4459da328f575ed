"""The Cranelift tier: bit-identical to the interpreter, fallback, memory, errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import alkahest as ak
from memory import rss_bytes
from strategies import N_VARS, SETTINGS, canonical_bits, points, setup_case, trees
from reference import build

INTERP = {vm: ak.CompileConfig(tier="interpreter", vector_math=vm) for vm in (True, False)}
CRANE = {vm: ak.CompileConfig(tier="cranelift", vector_math=vm) for vm in (True, False)}


def _pair(exprs, syms, vm):
    f = ak.compile_expr(exprs, syms, INTERP[vm], cache=False)
    g = ak.compile_expr(exprs, syms, CRANE[vm], cache=False)
    assert (f.tier, g.tier, g.fallback_reason) == ("interpreter", "cranelift", None)
    return f, g


@SETTINGS
@given(trees, points, st.booleans())
def test_bit_identical_to_interpreter_scalar_and_bulk(tree, pts, vm):
    syms, inputs, expr, _ = setup_case(tree, pts)
    f, g = _pair(expr, syms, vm)
    for p in zip(*inputs):
        assert canonical_bits(f(*p)) == canonical_bits(g(*p)), p
    assert canonical_bits(ak.numpy_eval(f, *inputs)) == canonical_bits(ak.numpy_eval(g, *inputs))
    # Strided (every other element) and broadcast (a single value) inputs.
    strided = [np.repeat(a, 2)[::2] for a in inputs]
    bcast = [strided[0], np.float64(inputs[1][0]), strided[2]]
    assert canonical_bits(ak.numpy_eval(f, *bcast)) == canonical_bits(ak.numpy_eval(g, *bcast))


@SETTINGS
@given(st.lists(trees, min_size=2, max_size=4), points, st.booleans())
def test_several_outputs_bit_identical(tree_list, pts, vm):
    pool = ak.ExprPool()
    syms = pool.symbols("x y z")
    inputs = [np.array([p[i] for p in pts], dtype=np.float64) for i in range(N_VARS)]
    exprs = [build(t, syms, inputs)[0] for t in tree_list]
    f, g = _pair(exprs, syms, vm)
    for u, v in zip(ak.numpy_eval(f, *inputs), ak.numpy_eval(g, *inputs)):
        assert canonical_bits(u) == canonical_bits(v)


def test_parallel_and_odd_lengths(xy):
    x, y = xy
    e = [ak.sin(x) * ak.cos(y) + ak.exp(-x * x), ak.where(x > y, x**3, ak.erf(y))]
    f, g = _pair(e, [x, y], True)
    rng = np.random.default_rng(3)
    for n in (1, 3, 1023, 1025, 200_001):
        a, b = rng.uniform(-4, 4, n), rng.uniform(-4, 4, n)
        want = ak.numpy_eval(f, a, b)
        for got in (ak.numpy_eval(g, a, b), ak.numpy_eval_par(g, a, b, threads=3)):
            for u, v in zip(want, got):
                assert canonical_bits(u) == canonical_bits(v), n


def test_oversized_tape_falls_back_to_the_interpreter(pool):
    x = pool.symbol("x")
    e = x
    for i in range(200_001):
        e = e + (i % 5 + 0.5)
    f = ak.compile_expr(e, [x], ak.CompileConfig(tier="cranelift"), cache=False)
    assert f.tier == "interpreter"
    assert "cranelift" in f.fallback_reason and "at most" in f.fallback_reason
    assert f(0.0) == ak.compile_expr(e, [x], INTERP[True], cache=False)(0.0)


def test_compiled_code_is_freed(xy):
    x, y = xy
    e = ak.sin(x) * y + x**3 - ak.where(x > y, x, y)
    for _ in range(500):  # warm up allocators
        ak.compile_expr(e, [x, y], CRANE[True], cache=False)
    before = rss_bytes()
    for _ in range(10_000):
        f = ak.compile_expr(e, [x, y], CRANE[True], cache=False)
        del f
    grown = rss_bytes() - before
    assert grown < 50 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 10,000 compile/drop cycles"


def test_errors_are_the_same_as_the_interpreters(xy):
    x, y = xy
    g = ak.compile_expr(x + y, [x, y], CRANE[True], cache=False)
    with pytest.raises(ak.ArityError):
        g(1.0)
    with pytest.raises(ak.ShapeError):
        ak.numpy_eval(g, np.zeros(3), np.zeros(4))
    assert repr(g).startswith("CompiledFn(f(x, y)") and "cranelift" in repr(g)
