"""to_stablehlo: the text parses and verifies with jaxlib's MLIR bindings."""

import sys
from pathlib import Path

import pytest

import alkahest as ak

pytest.importorskip("jaxlib", reason="jaxlib (MLIR bindings) is not available on this platform")
from jaxlib.mlir import ir  # noqa: E402
from jaxlib.mlir._mlir_libs import _jax_mlir_ext  # noqa: E402
from jaxlib.mlir.dialects import chlo, stablehlo  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
from suite import SUITE  # noqa: E402


@pytest.fixture(scope="module")
def context():
    registry = ir.DialectRegistry()
    _jax_mlir_ext.register_dialects(registry)  # func and the other upstream dialects
    ctx = ir.Context()
    ctx.append_dialect_registry(registry)
    ctx.load_all_available_dialects()
    stablehlo.register_dialect(ctx)
    chlo.register_dialect(ctx)
    return ctx


def parse(ctx, text):
    with ctx:
        module = ir.Module.parse(text)
        assert module.operation.verify()
        return module


@pytest.mark.parametrize("case", SUITE, ids=lambda c: c.name)
@pytest.mark.parametrize("shape", [(), (1024,), (8, 16)])
def test_suite_expressions_parse_and_verify(context, case, shape):
    expr, vars = case.build(ak.ExprPool())
    module = parse(context, ak.to_stablehlo(expr, vars, "suite", shape))
    assert "func.func public @suite" in str(module)


def test_every_op_and_several_outputs(context, xy):
    x, y = xy
    names = ["sqrt", "cbrt", "exp", "expm1", "log", "log1p", "log2", "log10", "sin", "cos", "tan", "asin", "acos",
             "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "erf", "erfc", "abs", "floor", "ceil", "round"]
    exprs = [getattr(ak, n)(x) for n in names]
    exprs += [ak.atan2(x, y), ak.min(x, y), ak.max(x, y), ak.copysign(x, y), x**y, x**7, x**-3, x**40,
              x < y, x <= y, x > y, x >= y, ak.eq(x, y), ak.ne(x, y), (x > 0) & (y > 0), (x > 0) | (y > 0),
              ~(x > y), ak.where(x > y, x - y, -x), x / y, x * y - 2.5, x]
    text = ak.to_stablehlo(exprs, [x, y])
    module = parse(context, text)
    assert str(module).count("tensor<f64>") > len(exprs)
    assert "chlo.erf" in text and "stablehlo.round_nearest_afz" in text


def test_bad_arguments(xy):
    x, y = xy
    with pytest.raises(ValueError, match="identifier"):
        ak.to_stablehlo(x + y, [x, y], "no good")
    with pytest.raises(ValueError, match="positive"):
        ak.to_stablehlo(x + y, [x, y], shape=(0,))
    with pytest.raises(ak.UnboundSymbolError):
        ak.to_stablehlo(x + y, [x])
