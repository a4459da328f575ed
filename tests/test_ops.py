"""The op table (``alkahest.ops``, declared once in ``alkahest_core::op``): every backend
covers exactly its operations. (That every tier computes each of them as the interpreter
does: test_native_tiers.py.)"""


import pytest

import alkahest as ak
from alkahest import ops
from alkahest.backends.llvm import emitter
from strategies import table_expressions


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
