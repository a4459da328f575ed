"""Differential property tests: random expressions, interpreter vs a NumPy reference.

The bound is per operation 8 ulp for transcendental functions (each side within 4 ulp of
the true value: libmvec/libm here, NumPy's routines there), 1 ulp for correctly rounded
arithmetic, |n| + 8 ulp for integer powers, propagated to first order (see reference.py).
"""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import alkahest as ak
from reference import build, assert_close
from strategies import BINARY_OPS, EDGE, N_VARS, SETTINGS, UNARY_OPS, canonical_bits, setup_case, points, trees

@SETTINGS
@given(trees, points)
def test_bulk_matches_reference(tree, pts):
    syms, inputs, expr, ref = setup_case(tree, pts)
    f = ak.compile_expr(expr, syms, cache=False)
    got = ak.numpy_eval(f, *inputs)
    assert_close(got, ref, f"bulk {expr}")
    # Strided and broadcast views give the same bits.
    strided = [np.repeat(a, 2)[::2] for a in inputs]
    assert canonical_bits(ak.numpy_eval(f, *strided)) == canonical_bits(got)


@SETTINGS
@given(trees, points)
def test_scalar_matches_reference(tree, pts):
    syms, inputs, expr, ref = setup_case(tree, pts)
    f = ak.compile_expr(expr, syms, cache=False)
    got = np.array([f(*p) for p in zip(*inputs)])
    assert_close(got, ref, f"scalar {expr}")


@SETTINGS
@given(trees, points)
def test_libm_bulk_equals_scalar_bit_for_bit(tree, pts):
    syms, inputs, expr, _ = setup_case(tree, pts)
    f = ak.compile_expr(expr, syms, ak.CompileConfig(vector_math=False), cache=False)
    bulk = ak.numpy_eval(f, *inputs)
    scalar = np.array([f(*p) for p in zip(*inputs)])
    assert canonical_bits(bulk) == canonical_bits(scalar)


@SETTINGS
@given(st.lists(trees, min_size=2, max_size=4), points)
def test_several_outputs(tree_list, pts):
    pool = ak.ExprPool()
    syms = pool.symbols("x y z")
    inputs = [np.array([p[i] for p in pts], dtype=np.float64) for i in range(N_VARS)]
    built = [build(t, syms, inputs) for t in tree_list]
    f = ak.compile_expr([e for e, _ in built], syms, cache=False)
    outs = ak.numpy_eval(f, *inputs)
    for (e, ref), got in zip(built, outs):
        assert_close(got, ref, f"output {e}")


def test_every_unary_op_on_edge_values():
    pool = ak.ExprPool()
    x = pool.symbol("x")
    xs = np.array(EDGE + list(np.linspace(-3, 3, 61)) + [0.9999, 1.0001, 700.0, -745.0])
    for name in UNARY_OPS:
        expr, ref = build(("unary", name, ("sym", 0)), [x], [xs])
        f = ak.compile_expr(expr, [x], cache=False)
        checked = assert_close(ak.numpy_eval(f, xs), ref, name)
        assert checked > len(xs) // 2, name
        assert_close(np.array([f(v) for v in xs]), ref, name + " scalar")


def test_every_binary_op_and_select_on_edge_values():
    pool = ak.ExprPool()
    x, y, z = pool.symbols("x y z")
    grid = np.array(EDGE + [2.0, -3.5, 0.25, 10.0])
    a, b = (g.ravel() for g in np.meshgrid(grid, grid))
    for name in BINARY_OPS:
        expr, ref = build(("binary", name, ("sym", 0), ("sym", 1)), [x, y], [a, b])
        f = ak.compile_expr(expr, [x, y], cache=False)
        checked = assert_close(ak.numpy_eval(f, a, b), ref, name)
        assert checked > len(a) // 2, name
        assert_close(np.array([f(u, v) for u, v in zip(a, b)]), ref, name + " scalar")
    expr, ref = build(("where", ("sym", 0), ("sym", 1), ("sym", 2)), [x, y, z], [a, b, -b])
    f = ak.compile_expr(expr, [x, y, z], cache=False)
    assert_close(ak.numpy_eval(f, a, b, -b), ref, "where")
