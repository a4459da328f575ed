"""The examples in the front-door docs and docstrings run as written (doctest)."""

import doctest
from pathlib import Path

import numpy as np
import pytest

import alkahest as ak

pytest.importorskip("sympy")

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def namespace():
    """What the examples use unqualified: alkahest's names, except those shadowing built-ins."""
    import builtins

    names = {n: getattr(ak, n) for n in ak.__all__ if not hasattr(builtins, n)}
    return {"np": np, "ak": ak, "alkahest": ak, **names}


@pytest.mark.parametrize("module", ["alkahest.text", "alkahest.derivatives", "alkahest.ode", "alkahest.interop.sympy", "alkahest.interop.lambdify",
                                    "alkahest.interop.evaluate", "alkahest.persist", "alkahest.interop.dask",
                                    "alkahest.tiers", "alkahest.ops", "alkahest.backends.tapeview", "alkahest.compile",
                                    "alkahest.optimizer", "alkahest.regroup"])
def test_docstring_examples(module):
    import importlib

    if module.endswith("dask"):
        pytest.importorskip("dask.array", reason="Dask is an optional extra (alkahest[dask])")
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, extraglobs=namespace(), optionflags=FLAGS)
    assert result.attempted > 0 and result.failed == 0


def test_frontdoor_guide():
    path = Path(__file__).parents[1] / "docs" / "frontdoor.md"
    result = doctest.testfile(str(path), module_relative=False, globs=namespace(), optionflags=FLAGS)
    assert result.attempted >= 8 and result.failed == 0


def test_derivatives_guide():
    pytest.importorskip("scipy")
    path = Path(__file__).parents[1] / "docs" / "derivatives.md"
    result = doctest.testfile(str(path), module_relative=False, globs={}, optionflags=FLAGS)
    assert result.attempted >= 15 and result.failed == 0


def native_docstrings():
    """(name, docstring) of every class and method of ``alkahest._native`` with an example."""
    from alkahest import _native

    for cls_name in dir(_native):
        cls = getattr(_native, cls_name)
        if not isinstance(cls, type):
            continue
        for name, member in [(cls_name, cls)] + [(f"{cls_name}.{m}", getattr(cls, m)) for m in vars(cls)]:
            doc = getattr(member, "__doc__", None) or ""
            if ">>>" in doc:
                yield name, doc


@pytest.mark.parametrize("name,doc", list(native_docstrings()), ids=lambda v: v if "." in v or v[:1].isupper() else "")
def test_native_docstring_examples(name, doc):
    test = doctest.DocTestParser().get_doctest(doc, namespace(), name, None, 0)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_persistence_guide():
    pytest.importorskip("dask.array", reason="the guide's Dask examples need alkahest[dask]")
    path = Path(__file__).parents[1] / "docs" / "persistence.md"
    result = doctest.testfile(str(path), module_relative=False, globs={}, optionflags=FLAGS)
    assert result.attempted >= 20 and result.failed == 0
