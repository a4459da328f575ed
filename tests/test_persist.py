"""Persistence: the DAG and tape formats, pickling of every public object, and the
per-process cache of unpickled functions. Damaged payloads are loaded in a subprocess,
so a crash fails a test instead of killing pytest."""

import copy
import pickle
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import alkahest as ak
from strategies import SETTINGS, canonical_bits, points, setup_case, trees

TIERS = [t for t in ak.KNOWN_TIERS if t in ak.AVAILABLE_TIERS]


def sample():
    pool = ak.ExprPool()
    x, y, z = pool.symbols("x y z")
    shared = ak.sin(x) * y
    outs = [shared + ak.exp(-z) * x**30, ak.where(x < y, shared, -0.0), ak.atan2(y, z) ** 3]
    return pool, (x, y, z), outs


def test_dumps_loads_merges_into_a_pool():
    pool, (x, y, z), outs = sample()
    data = pool.dumps(outs)
    assert data[:4] == b"AKHD"
    assert pool.loads(data) == outs  # the same nodes: nothing added
    n = len(pool)
    pool.loads(data)
    assert len(pool) == n
    other = ak.ExprPool()
    a = other.symbol("a")
    loaded = other.loads(data)
    assert [str(e) for e in loaded] == [str(e) for e in outs]
    assert len(other) == n + 1  # every shared node stored (and loaded) once
    assert (loaded[0] + a).pool == other  # usable with the pool's own expressions


def test_dumps_refuses_foreign_and_non_expressions():
    pool, _, outs = sample()
    with pytest.raises(ak.PoolMismatchError):
        ak.ExprPool().dumps(outs)
    with pytest.raises(TypeError, match="expressions"):
        pool.dumps([outs[0], 1.0])
    with pytest.raises(TypeError, match="expression"):
        pool.dumps(3)


@given(tree=trees, pts=points)
@SETTINGS
def test_pickled_expressions_and_tapes_give_identical_results(tree, pts):
    syms, inputs, expr, _ = setup_case(tree, pts)
    f = ak.compile_expr(expr, list(syms), ak.CompileConfig(tier="interpreter"), cache=False)
    want = canonical_bits(ak.numpy_eval(f, *inputs))
    e2, syms2 = pickle.loads(pickle.dumps((expr, list(syms))))
    assert e2 == expr  # same process: back into the same pool
    fresh = ak.ExprPool()
    e3, *syms3 = fresh.loads(expr.pool.dumps([expr, *syms]))
    t = pickle.loads(pickle.dumps(f.tape))
    assert t == f.tape
    data = pickle.dumps(f)
    ak.persist.clear()
    rebuilt = pickle.loads(data)
    assert rebuilt is not f
    for g in (ak.compile_expr(e3, syms3, ak.CompileConfig(tier="interpreter"), cache=False),
              ak._native.compile_interpreter(t, f.var_names), rebuilt):
        assert canonical_bits(ak.numpy_eval(g, *inputs)) == want


@given(cases=st.lists(st.tuples(trees, points), min_size=25, max_size=25))
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
def test_random_functions_give_identical_bits_in_a_fresh_process(cases, tmp_path_factory):
    """Random expressions, pickled as expressions (with their pool), tapes and compiled
    functions (adaptive and on the Cranelift tier), evaluated by a new interpreter."""
    tmp = tmp_path_factory.mktemp("fresh")
    items, want = [], []
    for tree, pts in cases:
        syms, inputs, expr, _ = setup_case(tree, pts)
        f = ak.compile_expr(expr, list(syms), cache=False)
        g = ak.compile_expr(expr, list(syms), ak.CompileConfig(tier="cranelift"), cache=False)
        items.append((expr, list(syms), expr.pool, f.tape, f, g, inputs))
        want.append(canonical_bits(ak.numpy_eval(f, *inputs)))
    (tmp / "items.pkl").write_bytes(pickle.dumps(items))
    run_python(f"""
        import pickle, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import alkahest as ak
        from strategies import canonical_bits
        out = []
        for expr, syms, pool, tape, f, g, inputs in pickle.loads(open({str(tmp / "items.pkl")!r}, "rb").read()):
            assert g.tier == "cranelift" and f.adaptive and expr.pool == pool
            h = ak.compile_expr(expr, syms, ak.CompileConfig(tier="interpreter"), cache=False)
            t = ak._native.compile_interpreter(tape, f.var_names)
            out.append([canonical_bits(ak.numpy_eval(k, *inputs)) for k in (f, g, h, t)])
        open({str(tmp / "out.pkl")!r}, "wb").write(pickle.dumps(out))
    """)
    for w, got in zip(want, pickle.loads((tmp / "out.pkl").read_bytes())):
        assert got == [w, w, w, w]


@pytest.mark.parametrize("tier", TIERS)
def test_compiled_functions_pickle_on_every_tier(tier):
    pool, syms, outs = sample()
    f = ak.compile_expr(outs, list(syms), ak.CompileConfig(tier=tier))
    xs = [np.linspace(-2, 2, 1001), np.linspace(0.5, 3, 1001), 1.5]
    want = ak.numpy_eval(f, *xs)
    data = pickle.dumps(f)
    assert pickle.loads(data) is f  # same process: the function itself
    ak.persist.clear()
    g = pickle.loads(data)
    assert g is not f and g.tier == tier and g.var_names == f.var_names
    for a, b in zip(ak.numpy_eval(g, *xs), want):
        assert a.tobytes() == b.tobytes()
    assert pickle.loads(pickle.dumps(f)) is g  # content-keyed: compiled once per process


def test_adaptive_function_stays_adaptive_and_config_travels():
    pool, syms, outs = sample()
    config = ak.CompileConfig(opt_level=2, fastmath=False)
    f = ak.compile_expr(outs[0], list(syms), config)
    data = pickle.dumps(f)
    ak.persist.clear()
    g = pickle.loads(data)
    assert g.adaptive and g._dispatch().config == config
    assert copy.deepcopy(g) is g  # deepcopy goes through the same reduce


def test_functions_made_without_compile_expr_pickle_on_their_tier():
    pool, syms, outs = sample()
    t = ak.lower(outs, list(syms))
    f = ak._native.compile_cranelift(t, ["x", "y", "z"])
    data = pickle.dumps(f)
    ak.persist.clear()
    g = pickle.loads(data)
    assert g.tier == "cranelift" and g(0.5, 1.0, 2.0) == f(0.5, 1.0, 2.0)


def test_config_and_cuda_function_pickle():
    config = ak.CompileConfig(tier="llvm", expected_evals=10**6, fastmath=True)
    assert pickle.loads(pickle.dumps(config)) == config
    pool, syms, outs = sample()
    try:
        f = ak.compile_cuda(outs, list(syms), ak.CudaConfig(dtype="float32"))
    except ak.CudaToolkitError as e:
        pytest.skip(f"no CUDA toolkit to generate PTX: {e}")
    g = pickle.loads(pickle.dumps(f))
    assert g.ptx == f.ptx and g.tape == f.tape and g.config == f.config and g.var_names == f.var_names


def test_pickle_size_is_a_few_bytes_per_operation():
    pool = ak.ExprPool()
    xs = pool.symbols(" ".join(f"x{i}" for i in range(8)))
    rng = random.Random(1)
    e = xs[0]
    for _ in range(500):
        e = rng.choice([lambda a, b: a * b + 1.5, lambda a, b: ak.sin(a) - b, lambda a, b: a / (b + 2.0)])(e, rng.choice(xs))
    f = ak.compile_expr(e, list(xs))
    assert f.tape.n_ops >= 500
    size = len(pickle.dumps(f))
    assert size < 8 * f.tape.n_ops, size  # the tape format: ~3-4 bytes per operation


def test_cloudpickle_works_too():
    cloudpickle = pytest.importorskip("cloudpickle")
    pool, syms, outs = sample()
    f = ak.compile_expr(outs, list(syms))
    data = cloudpickle.dumps(f)
    ak.persist.clear()
    g = pickle.loads(data)
    assert g is not f
    assert g(0.1, 0.2, 0.3) == f(0.1, 0.2, 0.3)
    e = pickle.loads(cloudpickle.dumps(outs[0]))
    assert e == outs[0]


# -- damaged payloads, in a subprocess -------------------------------------------------


def run_python(code: str, timeout: float = 120.0) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_every_truncation_and_random_flips_raise_serialization_error():
    out = run_python("""
        import pickle, random
        import alkahest as ak
        pool = ak.ExprPool(); x, y, z = pool.symbols("x y z")
        outs = [ak.sin(x) * y + z**30, ak.where(x < y, x, -0.0)]
        f = ak.compile_expr(outs, [x, y, z])
        payloads = {"dag": pool.dumps(outs), "tape": f.tape.dumps(),
                    "expr pickle": pickle.dumps(outs[0]), "function pickle": pickle.dumps(f)}
        loaders = {"dag": ak.ExprPool().loads, "tape": ak.Tape.loads,
                   "expr pickle": pickle.loads, "function pickle": pickle.loads}
        rng = random.Random(0)
        counts = {}
        for kind, data in payloads.items():
            cases = [data[:n] for n in range(len(data))]
            for _ in range(300):
                d = bytearray(data)
                for _ in range(rng.randint(1, 3)):
                    d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
                if d != data:  # two flips of one bit undo each other
                    cases.append(bytes(d))
            refused = 0
            for d in cases:
                try:
                    loaders[kind](d)
                except ak.SerializationError:
                    refused += 1
                except Exception as e:
                    # A flip in pickle's own framing (outside alkahest's checksummed
                    # payload) is pickle's to report.
                    assert "pickle" in kind and not isinstance(e, ak.AlkahestError), (kind, repr(e))
            counts[kind] = (refused, len(cases))
        for kind in ("dag", "tape"):
            assert counts[kind][0] == counts[kind][1], counts
        print(counts)
    """)
    assert "dag" in out


def test_hostile_sizes_are_refused_without_allocating():
    run_python("""
        import resource, struct, zlib
        import alkahest as ak
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # a huge allocation would fail loudly
        def seal(kind, body):
            data = b"AKH" + kind + b"\\x01" + b"\\x00" + body
            return data + struct.pack("<I", zlib.crc32(data))
        huge = b"\\xff\\xff\\xff\\xff\\x0f"
        for kind, body, load in [(b"D", huge, ak.ExprPool().loads), (b"T", b"\\x00" + huge, ak.Tape.loads),
                                 (b"D", b"\\x01\\x00" + huge + b"x", ak.ExprPool().loads),
                                 (b"T", b"\\x00\\x00\\x01\\x02\\x00\\x01\\x00", ak.Tape.loads)]:
            try:
                load(seal(kind, body))
            except ak.SerializationError as e:
                print(e)
            else:
                raise AssertionError("loaded a hostile payload")
        try:
            p = ak.ExprPool()
            ak.Tape.loads(p.dumps([p.symbol("x")]))
        except ak.SerializationError as e:
            assert "holds expressions" in str(e), e
        else:
            raise AssertionError("loaded expressions as a tape")
    """)


# -- other processes ----------------------------------------------------------------


def test_fresh_process_gives_bit_identical_results(tmp_path):
    pool, syms, outs = sample()
    f = ak.compile_expr(outs, list(syms))
    xs = [np.linspace(-2, 2, 10001), np.linspace(0.5, 3, 10001), np.linspace(-1, 1, 10001)]
    state, result = tmp_path / "state.pkl", tmp_path / "result.pkl"
    state.write_bytes(pickle.dumps((f, outs, pool, xs)))
    run_python(f"""
        import pickle
        import alkahest as ak
        f, outs, pool, xs = pickle.loads(open({str(state)!r}, "rb").read())
        assert all(e.pool == pool for e in outs), "expressions of one pool share one pool here"
        g = ak.compile_expr(outs, [pool.symbol(n) for n in "xyz"], ak.CompileConfig(tier="cranelift"))
        open({str(result)!r}, "wb").write(pickle.dumps((ak.numpy_eval(f, *xs), ak.numpy_eval(g, *xs))))
    """)
    want = ak.numpy_eval(f, *xs)
    for got in pickle.loads(result.read_bytes()):
        for a, b in zip(got, want):
            assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_process_pools_take_compiled_functions(method, tmp_path):
    import multiprocessing as mp

    if method not in mp.get_all_start_methods():
        pytest.skip(f"start method {method!r} is not available on this platform")
    # In a fresh interpreter (a script file: spawn re-imports the main module), so no
    # thread another test started (JAX's) is alive at the fork.
    script = tmp_path / "pools.py"
    script.write_text(textwrap.dedent(f"""
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        import numpy as np
        import alkahest as ak

        def evaluate(f, xs):
            return ak.numpy_eval_par(f, xs, 0.5, 2.0)

        if __name__ == "__main__":
            pool = ak.ExprPool(); x, y, z = pool.symbols("x y z")
            f = ak.compile_expr(ak.sin(x) * y + ak.exp(-z) * x**30, [x, y, z])
            chunks = [np.linspace(i, i + 1, 5000) for i in range(4)]
            want = [evaluate(f, c).tobytes() for c in chunks]
            ctx = mp.get_context({method!r})
            with ProcessPoolExecutor(2, mp_context=ctx) as ex:
                assert [r.tobytes() for r in ex.map(evaluate, [f] * 4, chunks)] == want
            with ctx.Pool(2) as p:
                assert [r.tobytes() for r in p.starmap(evaluate, [(f, c) for c in chunks])] == want
            print("ok")
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
