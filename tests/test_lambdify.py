"""alkahest.lambdify against sympy.lambdify: the same calling conventions, shapes and
values for every structure of args and expr, scalar and array inputs."""

import numpy as np
import pytest

sp = pytest.importorskip("sympy")

import alkahest as ak  # noqa: E402
from alkahest import errors  # noqa: E402

x, y, z = sp.symbols("x y z")


def assert_same(got, want):
    """Same structure (list, tuple, ndarray, scalar), shapes, dtypes kind and values."""
    if isinstance(want, (list, tuple)):
        assert type(got) is type(want) and len(got) == len(want), (got, want)
        for g, w in zip(got, want):
            assert_same(g, w)
        return
    g, w = np.asarray(got), np.asarray(want)
    assert g.shape == w.shape, (g.shape, w.shape)
    assert (g.dtype == bool) == (w.dtype == bool), (g.dtype, w.dtype)
    assert isinstance(got, np.ndarray) == isinstance(want, np.ndarray) or g.ndim == 0
    np.testing.assert_allclose(g.astype(float), w.astype(float), rtol=1e-14)


ARRAYS = (np.linspace(0.5, 2.0, 5), np.linspace(-1.0, 1.0, 5) + 0.1, np.full(5, 0.25))
CASES = [
    (x, sp.sin(x) + x**2),
    ([x, y], x * y + 1),
    ((x, y), [x + y, x * y]),
    ([x, y, z], (x * y, [z, x / y], (sp.exp(z),))),
    ([x, y], sp.Matrix([[x, y, x * y], [y, x**2, sp.cos(y)]])),  # 2x3
    ([x], sp.Matrix([[sp.sqrt(x)]])),  # 1x1
    ([x, y], sp.Matrix([x, y, x - y])),  # a column
    ([x, y], x > y),
    ([x, y], [sp.And(x > 0.7, y < 0.5), x + y]),
]


@pytest.mark.parametrize("args, expr", CASES, ids=range(len(CASES)))
def test_same_results_as_sympy_for_scalars_and_arrays(args, expr):
    ours, theirs = ak.lambdify(args, expr), sp.lambdify(args, expr)
    n = 1 if isinstance(args, sp.Symbol) else len(args)
    scalars = (1.25, -0.5, 0.75)[:n]
    assert_same(ours(*scalars), theirs(*scalars))
    arrays = ARRAYS[:n]
    assert_same(ours(*arrays), theirs(*arrays))
    # An array and numbers broadcast (every entry gets the points' shape; SymPy's would
    # leave entries that read only the numbers scalar, or fail for a matrix).
    mixed = (ARRAYS[0],) + scalars[1:]
    assert_same(ours(*mixed), theirs(*np.broadcast_arrays(*mixed)))


def test_nested_args_are_unpacked_like_sympy():
    args = [x, (y, z)]
    expr = (x * y, [z, x])
    ours, theirs = ak.lambdify(args, expr), sp.lambdify(args, expr)
    assert_same(ours(1.5, (2.0, 3.0)), theirs(1.5, (2.0, 3.0)))
    assert_same(ours(ARRAYS[0], (ARRAYS[1], ARRAYS[2])), theirs(ARRAYS[0], (ARRAYS[1], ARRAYS[2])))
    with pytest.raises(errors.ArityError, match=r"argument 1 must hold 2 values"):
        ours(1.0, (2.0,))
    with pytest.raises(errors.ArityError, match="takes 2 arguments"):
        ours(1.0)
    with pytest.raises(errors.ArityError, match="sequence"):
        ours(1.0, 2.0)


def test_matrix_of_many_entries_is_one_kernel_with_shared_work():
    s = sp.sin(x * y)
    m = sp.Matrix(10, 10, lambda i, j: s * (i + 1) + (j + 1) * x)
    f = ak.lambdify([x, y], m)
    assert f.compiled.n_outputs == 100
    assert f.compiled.tape.op_counts()["sin"] == 1  # computed once for all entries
    got = f(np.linspace(0, 1, 7), 0.5)
    assert got.shape == (10, 10, 7)
    np.testing.assert_allclose(got, sp.lambdify([x, y], m)(np.linspace(0, 1, 7), 0.5), rtol=1e-14)


def test_compatibility_arguments_are_accepted_and_config_chooses_the_tier():
    f = ak.lambdify([x], x + 1, modules="numpy", cse=True, dummify=True, docstring_limit=10,
                    config=ak.CompileConfig(tier="cranelift"))
    assert f(1.0) == 2.0 and f.compiled.tier == "cranelift"
    assert "Created with alkahest.lambdify" in f.__doc__
    assert ak.lambdify([], sp.Integer(3))() == 3.0


def test_dynamicsymbols_are_arguments():
    from sympy.physics.vector import dynamicsymbols

    q = dynamicsymbols("q")
    f = ak.lambdify([q, q.diff()], sp.sin(q) * q.diff())
    assert f(0.5, 2.0) == pytest.approx(np.sin(0.5) * 2.0)


def test_bad_arguments():
    with pytest.raises(TypeError, match="not a string"):
        ak.lambdify("x", x)
    with pytest.raises(errors.ConversionError, match="must be symbols"):
        ak.lambdify([x + 1], x)
    with pytest.raises(errors.ConversionError, match="compile_expr"):
        ak.lambdify([x], ak.ExprPool().symbol("x"))
    with pytest.raises(errors.UnboundSymbolError, match="'y'"):
        ak.lambdify([x], x + y)
