"""Every compiled tier of the registry against the interpreter: bit-identical results
(scalar and bulk, strided and broadcast, several outputs, every tail length, threads),
code freed on drop, the same errors. Tier-specific behaviour lives in test_cranelift.py
and test_llvm.py."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import alkahest as ak
from alkahest import tiers
from memory import rss_bytes
from reference import build
from strategies import (EDGE, N_VARS, SETTINGS, canonical_bits, points, setup_case, spilling_model, table_expressions,
                        trees)

NATIVE = [t for t in tiers.HOST if not t.floor]
# Compile/drop cycles for the memory test and the growth allowed (compiles differ in cost).
CYCLES = {"cranelift": (10_000, 50), "llvm": (1_000, 30)}


# Each compiled tier, skipped with its reason where this installation lacks it.
EACH = pytest.mark.parametrize("tier", [
    pytest.param(t, id=t.name, marks=pytest.mark.skipif(t.unavailable() is not None,
                                                          reason=f"the {t.name} tier is not available: {t.unavailable()}"))
    for t in NATIVE
])


def config(tier, vm=True):
    return ak.CompileConfig(tier=tier.name, vector_math=vm, cache_dir=False)


def pair(exprs, syms, tier, vm):
    f = ak.compile_expr(exprs, syms, ak.CompileConfig(tier=tiers.FLOOR.name, vector_math=vm), cache=False)
    g = ak.compile_expr(exprs, syms, config(tier, vm), cache=False)
    assert (g.tier, g.fallback_reason) == (tier.name, None)
    return f, g


def same(u, v):
    return canonical_bits(u) == canonical_bits(v)


@EACH
@SETTINGS
@given(tree=trees, pts=points, vm=st.booleans())
def test_bit_identical_to_interpreter_scalar_and_bulk(tier, tree, pts, vm):
    # Every tier calls the same libm/libmvec routines, so not only arithmetic agrees bit
    # for bit: transcendental results do too (for the same vector_math setting).
    syms, inputs, expr, _ = setup_case(tree, pts)
    f, g = pair(expr, syms, tier, vm)
    for p in zip(*inputs):
        assert same(f(*p), g(*p)), p
    assert same(ak.numpy_eval(f, *inputs), ak.numpy_eval(g, *inputs))
    # Strided (every other element, reversed) and broadcast (a single value) inputs.
    strided = [np.repeat(a, 2)[::2] for a in inputs]
    bcast = [strided[0], np.float64(inputs[1][0]), strided[2][::-1]]
    assert same(ak.numpy_eval(f, *bcast), ak.numpy_eval(g, *bcast))


@EACH
@SETTINGS
@given(tree_list=st.lists(trees, min_size=2, max_size=4), pts=points, vm=st.booleans())
def test_several_outputs_bit_identical(tier, tree_list, pts, vm):
    syms = ak.ExprPool().symbols("x y z")
    inputs = [np.array([p[i] for p in pts], dtype=np.float64) for i in range(N_VARS)]
    exprs = [build(t, syms, inputs)[0] for t in tree_list]
    f, g = pair(exprs, syms, tier, vm)
    for u, v in zip(ak.numpy_eval(f, *inputs), ak.numpy_eval(g, *inputs)):
        assert same(u, v)


@pytest.mark.parametrize("vm", [True, False])
@EACH
def test_every_operation_on_edge_values_and_every_tail_length(tier, vm):
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    outs = list(table_expressions(x, y).values()) + [x**21, x**-40, y, pool.constant(-0.0)]
    f, g = pair(outs, [x, y], tier, vm)
    vals = np.array(EDGE + [2.5, -2.5, 0.3, 3.0, -7.25, 1.5, -0.5])
    a, b = (m.ravel() for m in np.meshgrid(vals, vals))
    for n in [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 33, len(a)]:
        for u, v in zip(ak.numpy_eval(f, a[:n], b[:n]), ak.numpy_eval(g, a[:n], b[:n])):
            assert same(u, v), n
    for p in zip(a, b):
        assert same(f(*p), g(*p)), p


@EACH
def test_results_do_not_depend_on_position_threads_or_layout(tier):
    x, y = ak.ExprPool().symbols("x y")
    e = [ak.sin(x) * ak.cos(y) + ak.exp(-x * x), ak.where(x > y, x**3, ak.erf(y))]
    f, g = pair(e, [x, y], tier, True)
    rng = np.random.default_rng(3)
    for n in (1, 3, 1023, 1025, 200_001):
        a, b = rng.uniform(-4, 4, n), rng.uniform(-4, 4, n)
        want = ak.numpy_eval(f, a, b)
        for got in (ak.numpy_eval(g, a, b), ak.numpy_eval_par(g, a, b, threads=3)):
            for u, v in zip(want, got):
                assert same(u, v), n
        # The last point alone (a padded final iteration) gives the same bits.
        last = ak.numpy_eval(g, a[-1:], b[-1:])
        assert all(same(u[-1:], v) for u, v in zip(want, last))
    # 2-D broadcasting and Fortran order go through the gathering path.
    a = np.asfortranarray(rng.uniform(-2, 2, (37, 41)))
    b = rng.uniform(-2, 2, (1, 41))
    for u, v in zip(ak.numpy_eval(f, a, b), ak.numpy_eval_par(g, a, b, threads=2)):
        assert same(u, v)


@EACH
def test_compiled_code_is_freed(tier):
    x, y = ak.ExprPool().symbols("x y")
    e = ak.sin(x) * y + x**3 - ak.where(x > y, x, y)
    cycles, mib = CYCLES.get(tier.name, (1_000, 30))
    for _ in range(max(100, cycles // 20)):  # warm up allocators
        ak.compile_expr(e, [x, y], config(tier), cache=False)
    before = rss_bytes()
    for _ in range(cycles):
        f = ak.compile_expr(e, [x, y], config(tier), cache=False)
        del f
    grown = rss_bytes() - before
    assert grown < mib * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over {cycles:,} compile/drop cycles"


@EACH
def test_errors_are_the_same_as_the_interpreters(tier):
    x, y = ak.ExprPool().symbols("x y")
    g = ak.compile_expr(x + y, [x, y], config(tier), cache=False)
    with pytest.raises(ak.ArityError):
        g(1.0)
    with pytest.raises(ak.ShapeError):
        ak.numpy_eval(g, np.zeros(3), np.zeros(4))
    assert repr(g).startswith("CompiledFn(f(x, y)") and tier.name in repr(g)


def _wide_models(pool):
    """Functions whose block buffers do not fit a bulk entry's stack: many inputs (a
    gather buffer each) and many vector-math results alive at once (each computed for
    the first output, all read again by the second)."""
    xs = pool.symbols(" ".join(f"v{i}" for i in range(4000)))
    total = xs[0]
    for s in xs[1:]:
        total = total + s * 1.5
    x, y = xs[0], xs[1]
    sines = [ak.sin(x * (1 + k / 5000)) for k in range(5000)]
    forward, backward = sines[0], sines[-1]
    for s in sines[1:]:
        forward = forward + s
    for s in sines[-2::-1]:
        backward = backward + s * y
    return [("4000 inputs", [total, ak.sin(total) * xs[-1]], list(xs)),
            ("5000 values crossing stages", [forward, backward], [x, y])]


@EACH
def test_large_tapes_split_into_functions_agree(tier):
    # ~9,000 operations: both entries are cut into functions of ~1,024 operations, and
    # thousands of values cross them.
    outs, syms = spilling_model(3000)
    f, g = pair(outs, syms, tier, True)
    assert ak.lower(outs, syms).n_ops > 6000
    for point in ((0.5, -0.25), (1e300, 3.0), (-0.0, float("nan"))):
        assert same(g(*point), f(*point)), point
    xs = np.linspace(-2, 2, 1001)
    assert same(ak.numpy_eval(g, xs, xs[::-1]), ak.numpy_eval(f, xs, xs[::-1]))


@EACH
def test_frames_beyond_the_stack_compile_and_agree_on_every_thread(tier):
    # 40,000 points: numpy_eval_par runs on the worker threads (2 MiB stacks).
    rng = np.random.default_rng(7)
    for name, outs, syms in _wide_models(ak.ExprPool()):
        f, g = pair(outs, syms, tier, True)
        arrays = [rng.uniform(-1, 1, 80_000) for _ in range(2)] + [np.float64(0.25)] * (len(syms) - 2)
        for args in (arrays, [a[::2] if a.ndim else a for a in arrays]):
            if args[0].size > 40_000:
                args = [a[:40_000] if a.ndim else a for a in args]
            want = ak.numpy_eval(f, *args)
            for got in (ak.numpy_eval(g, *args), ak.numpy_eval_par(g, *args, threads=2)):
                assert all(same(u, v) for u, v in zip(want, got)), name
        point = [float(a[3]) if a.ndim else float(a) for a in arrays]
        assert same(g(*point), f(*point)), name
