"""emit_c: generated C compiles warning-free and computes what the interpreter computes."""

import ctypes
import math
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings

import alkahest as ak
from reference import UNARY, assert_close, build
from strategies import N_VARS, canonical_bits, points, trees

# Operations C computes exactly as alkahest does; the others call libm, whose functions may
# differ from the ones alkahest links by an ulp (alkahest's cbrt is Rust's, for one).
EXACT_UNARY = {"neg", "abs", "sqrt", "floor", "ceil", "round", "not"}
LIBM_BINARY = {"pow", "atan2"}


def arithmetic_only(tree):
    kind = tree[0]
    if kind in ("sym", "const"):
        return True
    if kind == "unary" and tree[1] not in EXACT_UNARY:
        return False
    if kind == "binary" and tree[1] in LIBM_BINARY:
        return False
    return all(arithmetic_only(t) for t in tree[1:] if isinstance(t, tuple))

CC = shutil.which("cc") or shutil.which("gcc")
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler on this machine")
FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-shared", "-fPIC"]


def compile_c(source, tmp_path, name="lib"):
    src = tmp_path / f"{name}.c"
    lib = tmp_path / f"{name}.so"
    src.write_text(source)
    proc = subprocess.run([CC, *FLAGS, str(src), "-o", str(lib), "-lm"], capture_output=True, text=True)
    assert proc.returncode == 0, f"{proc.stderr}\n{source}"
    return ctypes.CDLL(str(lib))


def scalar_fn(lib, n_in, n_out, name="f"):
    f = getattr(lib, name)
    f.argtypes = [ctypes.c_double] * n_in + ([ctypes.POINTER(ctypes.c_double)] if n_out > 1 else [])
    f.restype = ctypes.c_double if n_out == 1 else None
    if n_out == 1:
        return f

    def call(*args):
        out = (ctypes.c_double * n_out)()
        f(*args, out)
        return tuple(out)

    return call


@settings(max_examples=60)
@given(trees, points)
def test_random_expressions_compile_and_agree(tmp_path_factory, tree, pts):
    tmp = tmp_path_factory.mktemp("c")
    pool = ak.ExprPool()
    syms = pool.symbols("x y z")
    inputs = [np.array([p[i] for p in pts], dtype=np.float64) for i in range(N_VARS)]
    expr, ref = build(tree, syms, inputs)
    f = ak.compile_expr(expr, syms, cache=False)
    c = scalar_fn(compile_c(ak.emit_c(expr, syms), tmp), N_VARS, 1)
    got = np.array([c(*p) for p in pts])
    if arithmetic_only(tree):
        # Same operations in the same order: the same bits as the interpreter.
        assert canonical_bits(got) == canonical_bits([f(*p) for p in pts]), str(expr)
    else:
        # Within the error bound every implementation of the libm functions must meet.
        assert_close(got, ref, f"C {expr}")


def test_every_op_and_several_outputs(tmp_path, xy):
    x, y = xy
    exprs = [getattr(ak, n)(x) for n in ["sqrt", "cbrt", "exp", "expm1", "log", "log1p", "log2", "log10", "sin",
                                         "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh",
                                         "acosh", "atanh", "erf", "erfc", "abs", "floor", "ceil", "round"]]
    exprs += [ak.atan2(x, y), ak.min(x, y), ak.max(x, y), ak.copysign(x, y), x**y, x**7, x**-3, x**40,
              x < y, x <= y, x > y, x >= y, ak.eq(x, y), ak.ne(x, y), (x > 0) & (y > 0), (x > 0) | (y > 0),
              ~(x > y), ak.where(x > y, x - y, -x), -x, x / y, x * y - 2.5]
    f = ak.compile_expr(exprs, [x, y], cache=False)
    c = scalar_fn(compile_c(ak.emit_c(exprs, [x, y]), tmp_path), 2, len(exprs))
    edge = [0.0, -0.0, 0.5, -1.5, 2.0, 1e300, -1e-310, math.inf, -math.inf, math.nan]
    libm = {k for k, e in enumerate(exprs) if e.op in set(UNARY) - EXACT_UNARY | LIBM_BINARY}
    for u in edge:
        for v in edge:
            for k, (p, q) in enumerate(zip(c(u, v), f(u, v))):
                if k in libm and not (math.isnan(p) and math.isnan(q)):
                    assert p == q or abs(p - q) <= 2.3e-16 * max(abs(p), abs(q)), (exprs[k], u, v, p, q)
                else:
                    assert canonical_bits(p) == canonical_bits(q), (exprs[k], u, v)


def test_hostile_symbol_names(tmp_path):
    pool = ak.ExprPool()
    names = ['x; system("rm -rf /")', "int", "α", "a-b", "a_b", "t2", "sin", "f"]
    syms = [pool.symbol(n) for n in names]
    expr = syms[0] * 2 + syms[1] - syms[2] * syms[3] + syms[4] / syms[5] + ak.sin(syms[6]) + syms[7]
    source = ak.emit_c(expr, syms)
    assert "system(" not in source and "rm -rf" not in source
    c = scalar_fn(compile_c(source, tmp_path), len(syms), 1)
    f = ak.compile_expr(expr, syms, cache=False)
    args = [1.5, 2.0, 3.0, 0.25, 5.0, 4.0, 0.5, 7.0]
    assert c(*args) == f(*args)


def test_bulk_and_single_precision_forms(tmp_path, xy):
    x, y = xy
    exprs = [x * y + ak.sin(x), ak.max(x, y)]
    lib = compile_c(ak.emit_c(exprs, [x, y], "g", bulk=True), tmp_path, "bulk")
    n = 101
    a, b = np.linspace(-3, 3, n), np.linspace(2, -1, n)
    o0, o1 = np.empty(n), np.empty(n)
    ptr = ctypes.POINTER(ctypes.c_double)
    lib.g.argtypes = [ptr] * 4 + [ctypes.c_long]
    lib.g(*(arr.ctypes.data_as(ptr) for arr in (a, b, o0, o1)), n)
    want = ak.numpy_eval(ak.compile_expr(exprs, [x, y], ak.CompileConfig(vector_math=False), cache=False), a, b)
    assert o0.tobytes() == want[0].tobytes() and o1.tobytes() == want[1].tobytes()

    lib = compile_c(ak.emit_c(x * y + ak.sin(x), [x, y], "h", single=True, header=True)
                    + "float call_h(float a, float b) { return h(a, b); }\n", tmp_path, "single")
    lib.call_h.argtypes = [ctypes.c_float, ctypes.c_float]
    lib.call_h.restype = ctypes.c_float
    assert lib.call_h(1.5, 2.0) == pytest.approx(1.5 * 2.0 + math.sin(1.5), rel=1e-6)


def test_bad_function_name(xy):
    x, _ = xy
    with pytest.raises(ak.ExpressionError, match="not a usable C function name"):
        ak.emit_c(x + 1, [x], "int")
    with pytest.raises(ak.ExpressionError):
        ak.emit_c(x + 1, [x], "my func")
