"""Run as a subprocess by test_cuda.py: generates PTX for every tape operation (one
kernel each) and every benchmark-suite expression, in each dtype and architecture given,
and writes the files to argv[1]. An LLVM abort kills only this process, and the test
reports it with its output."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import alkahest as ak  # noqa: E402
from alkahest.backends.cuda import ptxgen  # noqa: E402
from alkahest.backends.llvm.irgen import TapeView  # noqa: E402

UNARY = ["sqrt", "cbrt", "exp", "expm1", "log", "log1p", "log2", "log10", "sin", "cos", "tan", "asin",
         "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "erf", "erfc", "abs", "floor",
         "ceil", "round"]


def operations(x, y):
    ops = {name: getattr(ak, name)(x) for name in UNARY}
    ops.update({
        "neg": -x, "not": ~x, "add": x + y, "sub": x - y, "mul": x * y, "div": x / y, "pow": x**y,
        "atan2": ak.atan2(x, y), "min": ak.min(x, y), "max": ak.max(x, y), "copysign": ak.copysign(x, y),
        "lt": x < y, "le": x <= y, "gt": x > y, "ge": x >= y, "eq": ak.eq(x, y), "ne": ak.ne(x, y),
        "and": x & y, "or": x | y, "select": ak.where(x, y, x), "fma": x**-21,
    })
    return ops


def main():
    out = Path(sys.argv[1])
    dtypes, archs = sys.argv[2].split(","), sys.argv[3].split(",")
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    jobs = [(f"op-{name}", e, [x, y]) for name, e in operations(x, y).items()]
    import suite

    jobs += [(f"suite-{c.name}",) + c.build(ak.ExprPool()) for c in suite.SUITE]
    for name, expr, vars in jobs:
        tape = TapeView.of(ak.lower(expr, vars))
        for dtype in dtypes:
            for arch in archs:
                (out / f"{name}.{dtype}.{arch}.ptx").write_text(ptxgen.ptx_for(tape, dtype, arch))
    print(len(jobs) * len(dtypes) * len(archs))


if __name__ == "__main__":
    main()
