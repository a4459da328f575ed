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
                                    "alkahest.interop.evaluate"])
def test_docstring_examples(module):
    import importlib

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
