import os
import tempfile

# The LLVM tier's disk cache goes to a fresh directory per test session, never ~/.cache.
os.environ["ALKAHEST_CACHE_DIR"] = tempfile.mkdtemp(prefix="alkahest-test-cache-")
# Tier decisions use the shipped calibration, never one the developer made for their machine,
# and no tier override from the environment leaks in.
os.environ["ALKAHEST_CALIBRATION"] = "default"
for _var in ("ALKAHEST_TIER", "ALKAHEST_DISABLE_TIERS", "ALKAHEST_TIERUP"):
    os.environ.pop(_var, None)

import pytest
from hypothesis import settings

import alkahest as ak

# CI runs a fixed set of examples (derandomize) so a red build always reproduces; local
# runs explore new examples each time. HYPOTHESIS_PROFILE=thorough runs many more.
settings.register_profile("default", max_examples=300, deadline=None)
settings.register_profile("ci", max_examples=300, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))


@pytest.fixture
def pool():
    return ak.ExprPool()


@pytest.fixture
def xy(pool):
    return pool.symbols("x y")
