"""The tier registry: the one place tiers are described, and the only place (with each
tier's own module) their names are spelled in the package's code."""

import ast
from pathlib import Path

import numpy as np
import pytest

import alkahest as ak
from alkahest import tiers

PACKAGE = Path(ak.__file__).parent
USABLE = [t for t in tiers.HOST if t.unavailable() is None]
ALL_NAMES = {t.name for t in tiers.REGISTRY}


def test_the_registry_is_what_config_and_the_package_expose():
    assert tiers.NAMES == ak.KNOWN_TIERS
    assert ak.AVAILABLE_TIERS == tuple(t.name for t in USABLE)
    assert [t.name for t in tiers.REGISTRY if t.floor] == [tiers.FLOOR.name]
    assert tiers.NAMES == tuple(t.name for t in tiers.HOST)
    assert [tiers.rank(n) for n in tiers.NAMES] == list(range(len(tiers.NAMES)))
    assert set(tiers.options("auto")) == {o for t in tiers.HOST for o in t.options}
    with pytest.raises(ak.UnknownTierError, match="choose one of"):
        tiers.get("gpu")


@pytest.mark.parametrize("tier", USABLE, ids=lambda t: t.name)
def test_every_registered_tier_compiles_and_agrees_with_the_floor(tier):
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    tape = ak.lower([ak.sin(x) * y + x**7, ak.where(x < y, x, y)], [x, y])
    f = tier.compile(tape, ["x", "y"], ak.CompileConfig(), None)
    floor = tiers.FLOOR.compile(tape, ["x", "y"], ak.CompileConfig(), None)
    assert f.tier == tier.name
    xs, ys = np.linspace(-2, 2, 3001), np.linspace(3, -1, 3001)
    for a, b in zip(ak.numpy_eval(f, xs, ys), ak.numpy_eval(floor, xs, ys)):
        assert a.tobytes() == b.tobytes()
    assert f(0.5, 2.0) == floor(0.5, 2.0)


def _tier_literals(path: Path):
    """String constants equal to a tier's name in ``path``'s code (docstrings aside)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    return [(path.name, node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in ALL_NAMES and id(node) not in docstrings]


def test_no_tier_name_is_spelled_outside_the_registry_and_its_own_module():
    own = {PACKAGE / "tiers.py"} | {p for t in ALL_NAMES for p in (PACKAGE / "backends" / t).rglob("*.py")}
    found = [hit for p in sorted(PACKAGE.rglob("*.py")) if p not in own for hit in _tier_literals(p)]
    assert found == [], found


def test_the_gpu_tier_is_registered_explicit_only():
    gpu = [t for t in tiers.REGISTRY if t.device]
    assert [t.name for t in gpu] == ["cuda"] and gpu[0].name not in tiers.NAMES
    assert all(not t.device for t in tiers.HOST) and tiers.get("cuda") is gpu[0]
    # auto and fallback choose among host tiers only; CompileConfig refuses the device tier.
    assert "cuda" not in ak.AVAILABLE_TIERS
    with pytest.raises(ak.ConfigError, match="compile_cuda"):
        ak.CompileConfig(tier="cuda")


def test_compile_cuda_goes_through_the_registry(monkeypatch):
    from alkahest.backends import cuda

    x, y = ak.ExprPool().symbols("x y")
    calls = []
    real = tiers.get("cuda").compile
    monkeypatch.setattr(tiers, "_BY_NAME", {**tiers._BY_NAME, "cuda": tiers.Tier(
        "cuda", lambda *a: calls.append(a) or real(*a), tiers.get("cuda").unavailable, device=True)})
    f = cuda.compile_cuda(ak.sin(x) * y, [x, y])
    assert len(calls) == 1 and f.tier == "cuda" and ".entry alkahest_kernel" in f.ptx
    with pytest.raises(ak.ConfigError, match="CudaConfig"):
        cuda.compile_cuda(x, [x], ak.CompileConfig())
