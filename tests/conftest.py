import pytest

import alkahest as ak


@pytest.fixture
def pool():
    return ak.ExprPool()


@pytest.fixture
def xy(pool):
    return pool.symbols("x y")
