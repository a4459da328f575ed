"""The op table (``alkahest.ops``, declared once in ``alkahest_core::op``): every backend
covers exactly its operations, and every tier of the registry computes each of them as
the interpreter does."""

import math

import numpy as np
import pytest

import alkahest as ak
from alkahest import ops, tiers
from alkahest.backends.llvm import emitter
from strategies import EDGE, canonical_bits, table_expressions


def names(op_class):
    return {op.name for op in ops.of_class(op_class)}


def test_the_table_is_the_cores_and_every_class_is_used():
    assert len(ops.TABLE) == len(ops.OPS)
    assert {op.op_class for op in ops.TABLE} == set(ops.CLASSES)
    assert all(op.libm == op.name for op in ops.of_class("call"))
    assert all(op.libm is None for op in ops.TABLE if op.op_class != "call")
    assert {op.name for op in ops.TABLE if op.vector} == {op.name for op in ops.of_class("call") if op.arity == 1}
    with pytest.raises(ValueError, match="unknown op class"):
        ops.of_class("transcendental")


def test_the_llvm_emitter_spells_exactly_the_table():
    assert set(emitter.ARITHMETIC) | {"neg", "fma"} == names("arithmetic")
    assert set(emitter.COMPARISONS) == names("compare")
    assert set(emitter.UNARY_INTRINSICS) | set(emitter.BINARY_INTRINSICS) == names("exact")
    assert emitter.SUPPORTED_OPS == set(ops.OPS) | {"input", "const"}


def test_the_gpu_math_library_has_a_route_for_every_operation():
    from alkahest.backends.cuda import ptxgen

    lib = ptxgen.LIBDEVICE_MATH
    for op in ops.TABLE:
        if op.op_class in ("call", "exact") and op.name not in ("min", "max"):
            assert op.name in lib.intrinsics or lib.call(op.name, "double"), op.name
    assert lib.call("sin", "float") == "__nv_sinf"


def test_the_cost_model_prices_every_operation_of_the_table():
    from alkahest.costmodel import OP_KINDS

    x, y = ak.ExprPool().symbols("x y")
    assert OP_KINDS == tuple(op.name for op in ops.TABLE)
    tape = ak.lower(list(table_expressions(x, y).values()), [x, y])
    counts = dict(zip(OP_KINDS, tape.op_count_vector()))
    assert all(counts[name] >= 1 for name in ops.OPS), {n for n in ops.OPS if not counts[n]}


@pytest.mark.parametrize("tier", [t.name for t in tiers.HOST])
def test_every_tier_computes_every_operation_as_the_interpreter(tier):
    if tiers.get(tier).unavailable():
        pytest.skip(tiers.get(tier).unavailable())
    x, y = ak.ExprPool().symbols("x y")
    a, b = np.meshgrid(np.array(EDGE + [2.5, -3.75, 0.3]), np.array(EDGE + [2.5, -3.75, 0.3]))
    a, b = a.ravel().copy(), b.ravel().copy()
    for vm in (True, False):
        ref_cfg = ak.CompileConfig(tier=tiers.FLOOR.name, vector_math=vm)
        cfg = ak.CompileConfig(tier=tier, vector_math=vm)
        for name, e in table_expressions(x, y).items():
            f = ak.compile_expr(e, [x, y], cfg, cache=False)
            g = ak.compile_expr(e, [x, y], ref_cfg, cache=False)
            assert f.tier == tier, f.fallback_reason
            assert canonical_bits(ak.numpy_eval(f, a, b)) == canonical_bits(ak.numpy_eval(g, a, b)), (name, vm)
            for p in ((0.5, -2.0), (-0.0, math.nan), (3.0, math.inf)):
                assert canonical_bits(f(*p)) == canonical_bits(g(*p)), (name, p)
