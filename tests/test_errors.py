"""Every user mistake raises a class of ``alkahest.errors`` (which also subclasses the
built-in exception it resembles) with a message that says what to do."""

import numpy as np
import pytest

import alkahest as ak


@pytest.fixture(scope="module")
def env():
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    f = ak.compile_expr(x * y + 1, [x, y])
    g = ak.compile_expr([x + y, x - y], [x, y])
    return pool, x, y, f, g


MISTAKES = {
    # building expressions
    "truth value of an expression": (lambda p, x, y, f, g: bool(x < y), TypeError, "where"),
    "apply without an expression": (lambda p, x, y, f, g: ak._native.apply("sin", 1.0), TypeError, "math module"),
    "apply with a string": (lambda p, x, y, f, g: ak.atan2(x, "y"), TypeError, "expression or a number"),
    "integer() of a float": (lambda p, x, y, f, g: p.integer(2.5), TypeError, "int"),
    "inexact integer": (lambda p, x, y, f, g: x + (2**60 + 1), ValueError, "float"),
    "pow with a modulus": (lambda p, x, y, f, g: pow(x, 2, 3), ValueError, "modulus"),
    "two pools": (lambda p, x, y, f, g: x + ak.ExprPool().symbol("z"), ValueError, "pool"),
    "empty symbol name": (lambda p, x, y, f, g: p.symbol(""), ValueError, "name"),
    "piecewise without pairs": (lambda p, x, y, f, g: ak.piecewise(), TypeError, "pair"),
    "piecewise with a non-pair": (lambda p, x, y, f, g: ak.piecewise((x, x > 0), 3), TypeError, "pair"),
    "parse of a non-string": (lambda p, x, y, f, g: ak.parse(3), TypeError, "str"),
    "parse error": (lambda p, x, y, f, g: ak.parse("x +* y"), ValueError, "x"),
    # compiling
    "compile a number": (lambda p, x, y, f, g: ak.compile_expr(3.0, [x]), TypeError, "expression"),
    "compile nothing": (lambda p, x, y, f, g: ak.compile_expr([], [x]), TypeError, "output"),
    "vars as a set": (lambda p, x, y, f, g: ak.compile_expr(x + y, {x, y}), ValueError, "ordered"),
    "vars with a number": (lambda p, x, y, f, g: ak.compile_expr(x + y, [x, 2.0]), ValueError, "symbol"),
    "vars missing a symbol": (lambda p, x, y, f, g: ak.compile_expr(x + y, [x]), ValueError, "vars"),
    "vars twice": (lambda p, x, y, f, g: ak.compile_expr(x + y, [x, x, y]), ValueError, "twice"),
    "config as a dict": (lambda p, x, y, f, g: ak.compile_expr(x, [x], {"tier": "llvm"}), ValueError, "CompileConfig"),
    "string flag": (lambda p, x, y, f, g: ak.CompileConfig(fastmath="false"), TypeError, "True or False"),
    "unknown tier": (lambda p, x, y, f, g: ak.CompileConfig(tier="gpu"), ValueError, "tier"),
    "cache capacity 0": (lambda p, x, y, f, g: ak.CompileCache(capacity=0), ValueError, "positive"),
    "eval_expr with a list": (lambda p, x, y, f, g: ak.eval_expr(x, [1.0]), TypeError, "mapping"),
    # calling
    "too few arguments": (lambda p, x, y, f, g: f(1.0), TypeError, "takes 2"),
    "a string argument": (lambda p, x, y, f, g: f(1.0, "2"), TypeError, "real number"),
    "a huge integer": (lambda p, x, y, f, g: f(10**400, 1), TypeError, "too large"),
    "numpy_eval of a lambda": (lambda p, x, y, f, g: ak.numpy_eval(lambda a, b: a, 1.0, 2.0), TypeError, "CompiledFn"),
    "shapes that do not broadcast": (lambda p, x, y, f, g: ak.numpy_eval(f, np.ones(3), np.ones(4)), ValueError, "broadcast"),
    "string array": (lambda p, x, y, f, g: ak.numpy_eval(f, np.array(["a"]), 1.0), TypeError, "float64"),
    "complex array": (lambda p, x, y, f, g: ak.numpy_eval(f, np.ones(2, complex), 1.0), TypeError, "complex"),
    "out of the wrong shape": (lambda p, x, y, f, g: ak.numpy_eval(f, np.ones(3), 1.0, out=np.empty(4)), ValueError, "shape"),
    "out of the wrong dtype": (lambda p, x, y, f, g: ak.numpy_eval(f, np.ones(3), 1.0, out=np.empty(3, np.float32)), TypeError, "float64"),
    "out missing an output": (lambda p, x, y, f, g: ak.numpy_eval(g, np.ones(3), 1.0, out=(np.empty(3),)), TypeError, "2 arrays"),
    "threads=0": (lambda p, x, y, f, g: ak.numpy_eval_par(f, np.ones(3), 1.0, threads=0), ValueError, "positive"),
    "threads as a string": (lambda p, x, y, f, g: ak.numpy_eval_par(f, np.ones(3), 1.0, threads="2"), ValueError, "positive"),
    "explain of a lambda": (lambda p, x, y, f, g: ak.explain(lambda: 0), TypeError, "CompiledFn"),
    # derivatives, embedding, persistence
    "diff order -1": (lambda p, x, y, f, g: ak.diff(x * y, x, n=-1), ValueError, "non-negative"),
    "diff of a number": (lambda p, x, y, f, g: ak.diff(3.0, x), TypeError, "expression"),
    "gradient of a list": (lambda p, x, y, f, g: ak.gradient([x, y], [x, y]), TypeError, "jacobian"),
    "jacobian mode": (lambda p, x, y, f, g: ak.jacobian([x * y], [x, y], mode="sideways"), ValueError, "mode"),
    "to_stablehlo name": (lambda p, x, y, f, g: ak.to_stablehlo(x, [x], fn_name="1abc"), ValueError, "identifier"),
    "to_stablehlo shape": (lambda p, x, y, f, g: ak.to_stablehlo(x, [x], shape=(0,)), ValueError, "positive"),
    "emit_c name": (lambda p, x, y, f, g: ak.emit_c(x, [x], fn_name="int"), ValueError, "fn_name"),
    "loads of garbage": (lambda p, x, y, f, g: p.loads(b"garbage!!"), ValueError, "alkahest"),
    "dumps of a number": (lambda p, x, y, f, g: p.dumps([x, 1.0]), TypeError, "expressions"),
    "Tape.loads of expressions": (lambda p, x, y, f, g: ak.Tape.loads(p.dumps(x)), ValueError, "expressions"),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_each_mistake_raises_an_alkahest_error(case, env):
    call, builtin, hint = MISTAKES[case]
    with pytest.raises(ak.AlkahestError) as info:
        call(*env)
    assert isinstance(info.value, builtin), f"{case}: {type(info.value).__name__} is not a {builtin.__name__}"
    assert hint.lower() in str(info.value).lower(), f"{case}: the message does not say {hint!r}: {info.value}"
