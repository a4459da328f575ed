"""Run as a subprocess by test_cuda.py: generates PTX for every tape operation (one
kernel each) and every benchmark-suite expression, in each dtype and architecture given,
and writes the files to argv[1]. An LLVM abort kills only this process, and the test
reports it with its output."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import alkahest as ak  # noqa: E402
from alkahest.backends.cuda import ptxgen  # noqa: E402
from alkahest.backends.tapeview import TapeView  # noqa: E402
from strategies import table_expressions  # noqa: E402

def main():
    out = Path(sys.argv[1])
    dtypes, archs = sys.argv[2].split(","), sys.argv[3].split(",")
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    jobs = [(f"op-{name}", e, [x, y]) for name, e in table_expressions(x, y).items()]
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
