"""The LLVM tier's disk cache: reuse across processes, corruption, concurrent writers,
keys, locations."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import alkahest as ak

pytest.importorskip("llvmlite", reason="the LLVM tier needs llvmlite (in requirements-dev.txt)")

from alkahest.backends.llvm import diskcache  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# A child process compiles a ~100-operation expression with the cache in argv[1] and
# prints whether it loaded the code from the cache, then its results as hex.
CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import alkahest as ak
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    e = x
    for k in range(25):
        e = ak.sin(e * 0.75 + y) + ak.tanh(x - e * k) * 0.5
    f = ak.compile_expr(e, [x, y], ak.CompileConfig(tier="llvm", cache_dir=sys.argv[1]), cache=False)
    assert f.tier == "llvm", f.fallback_reason
    xs = np.linspace(-3, 3, 1001)
    print(f.backend.loaded_from_cache)
    print(ak.numpy_eval(f, xs, 0.25).tobytes().hex())
    """
)


def _child(cache_dir):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(cache_dir)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    loaded, values = out.stdout.split()
    return loaded == "True", values


def _only_entry(cache_dir):
    files = [p for p in Path(cache_dir).iterdir() if p.suffix == ".o"]
    assert len(files) == 1, files
    return files[0]


def test_a_second_process_loads_the_kernel_and_gets_the_same_bits(tmp_path):
    loaded, first = _child(tmp_path)
    assert not loaded
    entry = _only_entry(tmp_path)
    assert diskcache.load(entry) is not None
    loaded, second = _child(tmp_path)
    assert loaded and second == first


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_a_damaged_entry_is_recompiled_and_replaced(tmp_path, damage):
    _, want = _child(tmp_path)
    entry = _only_entry(tmp_path)
    data = bytearray(entry.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-100] ^= 0x40  # inside the machine code
    elif damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    else:
        data = bytearray()
    entry.write_bytes(bytes(data))
    loaded, got = _child(tmp_path)
    assert not loaded and got == want
    assert diskcache.load(entry) is not None, "the damaged entry is rewritten"
    assert _child(tmp_path) == (True, want)


def test_concurrent_writers_leave_one_valid_entry(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outs = [p.communicate()[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len({values for _, values in outs}) == 1
    entry = _only_entry(tmp_path)  # no temporary files left behind
    assert diskcache.load(entry) is not None
    assert _child(tmp_path) == (True, outs[0][1])


def test_in_process_reuse_and_keys(tmp_path, xy):
    x, y = xy
    e = ak.sin(x) * ak.exp(y) + x**3

    def compile_(**kw):
        return ak.compile_expr(e, [x, y], ak.CompileConfig(tier="llvm", cache_dir=tmp_path, **kw), cache=False)

    assert not compile_().backend.loaded_from_cache
    f = compile_()
    assert f.backend.loaded_from_cache and f(0.5, 0.25) == ak.compile_expr(e, [x, y], cache=False)(0.5, 0.25)
    # Options that change the code change the key.
    for kw in ({"opt_level": 1}, {"fastmath": True}, {"vector_math": False}):
        assert not compile_(**kw).backend.loaded_from_cache
    assert len(list(tmp_path.glob("*.o"))) == 4
    # So does the expression.
    g = ak.compile_expr(e + 1, [x, y], ak.CompileConfig(tier="llvm", cache_dir=tmp_path), cache=False)
    assert not g.backend.loaded_from_cache and g(0.5, 0.25) == f(0.5, 0.25) + 1


def test_cache_off_and_unwritable_locations(tmp_path, xy, monkeypatch):
    x, y = xy
    f = ak.compile_expr(x * y, [x, y], ak.CompileConfig(tier="llvm", cache_dir=False), cache=False)
    assert f.backend.cache_path is None
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    g = ak.compile_expr(x * y, [x, y], ak.CompileConfig(tier="llvm", cache_dir=not_a_dir), cache=False)
    assert g.tier == "llvm" and g(2.0, 3.0) == 6.0 and not g.backend.loaded_from_cache


def test_default_location_and_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(diskcache.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert diskcache.default_dir() == tmp_path / "alkahest" / "llvm"
    monkeypatch.setenv(diskcache.ENV_VAR, str(tmp_path / "elsewhere"))
    assert diskcache.resolve_dir(None) == tmp_path / "elsewhere"
    for off in ("0", "off", ""):
        monkeypatch.setenv(diskcache.ENV_VAR, off)
        assert diskcache.resolve_dir(None) is None
    assert diskcache.resolve_dir(False) is None
    assert diskcache.resolve_dir(str(tmp_path)) == tmp_path


def test_another_native_build_never_loads_this_builds_objects(tmp_path, monkeypatch):
    import alkahest.backends.llvm as llvm_tier

    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    config = ak.CompileConfig(tier="llvm", cache_dir=str(tmp_path))
    first = ak.compile_expr(ak.sin(x) * y, [x, y], config, cache=False)
    again = ak.compile_expr(ak.sin(x) * y, [x, y], config, cache=False)
    assert not first.backend.loaded_from_cache and again.backend.loaded_from_cache
    assert llvm_tier.native_identity() == ak._native.BUILD_ID and len(ak._native.BUILD_ID) == 16
    monkeypatch.setattr(llvm_tier, "native_identity", lambda: "another build")
    other = ak.compile_expr(ak.sin(x) * y, [x, y], config, cache=False)
    assert not other.backend.loaded_from_cache  # a miss: the key names the native build
    assert len(list(tmp_path.glob("*.o"))) == 2
