"""Hypothesis strategies shared by the differential tests: random expression trees over
three inputs (every operation of the tape) and points that include NaN, infinities,
signed zeros, subnormals and huge values."""

import math

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import alkahest as ak
from alkahest import _native
from alkahest.ops import TABLE
from reference import STEP, UNARY, build

# Every operation of the op table (``alkahest.ops``) appears in the random trees.
UNARY_OPS = [op.name for op in TABLE if op.arity == 1]
BINARY_OPS = [op.name for op in TABLE if op.arity == 2]
assert set(UNARY_OPS) == set(UNARY) | set(STEP), "every unary operation needs a reference"
EDGE = [math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, -2.2250738585072014e-308, 1e300, -1e300, 0.5, -1.0, 1.0]
N_VARS = 3

leaves = st.one_of(
    st.tuples(st.just("sym"), st.integers(0, N_VARS - 1)),
    st.tuples(st.just("const"), st.sampled_from([0.0, 1.0, -2.5, 0.5, 3.0, 1e-3, 7.0, -0.0])),
)


def extend(children):
    return st.one_of(
        st.tuples(st.just("unary"), st.sampled_from(UNARY_OPS), children),
        st.tuples(st.just("binary"), st.sampled_from(BINARY_OPS), children, children),
        st.tuples(st.just("powi"), children, st.sampled_from([-3, -2, -1, 2, 3, 4, 5, 7, 16, 20])),
        st.tuples(st.just("where"), children, children, children),
    )


trees = st.recursive(leaves, extend, max_leaves=10)
values = st.one_of(st.floats(-10, 10), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(EDGE))
points = st.lists(st.tuples(*[values] * N_VARS), min_size=1, max_size=40)



def table_expressions(x, y):
    """One expression per operation of the op table, computing it at its root: ``{name:
    expression}`` (``fma`` through an integer power, which lowering compensates with it)."""
    out = {}
    for op in TABLE:
        if op.name == "select":
            out[op.name] = ak.where(x, y, x)
        elif op.name == "fma":
            out[op.name] = x**-21
        else:
            out[op.name] = _native.apply(op.name, *(x, y)[: op.arity])
    return out


def canonical_bits(a):
    """The bytes of an array with every NaN made canonical: IEEE 754 leaves NaN payloads
    (which NaN survives `nan1 + nan2`) unspecified, and SIMD and scalar code differ there."""
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.isnan(a), np.nan, a).tobytes()


SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow])


def setup_case(tree, pts, use_mpmath=False):
    pool = ak.ExprPool()
    syms = pool.symbols("x y z")
    inputs = [np.array([p[i] for p in pts], dtype=np.float64) for i in range(N_VARS)]
    expr, ref = build(tree, syms, inputs, use_mpmath)
    return syms, inputs, expr, ref


def spilling_model(n):
    """Two outputs over ~3n operations: n products summed forwards for one and backwards
    for the other, so the second sum reads values computed in long-past chunks of the
    scalar entry (spilled) and stages of the bulk loop (buffered)."""
    x, y = ak.ExprPool().symbols("x y")
    products = [x * (1.0 + k / n) for k in range(n)]
    forward = backward = y
    for u, v in zip(products, reversed(products)):
        forward, backward = forward + u, backward - v
    return [forward, backward], [x, y]
