"""compile_ode with SciPy's stiff integrators (real solve_ivp runs), and
low_level_callable with scipy.integrate.quad."""

import functools
import gc
import math

import numpy as np
import pytest

import alkahest as ak

pytest.importorskip("scipy")
from scipy.integrate import quad, solve_ivp  # noqa: E402

from alkahest.dispatch import wait_for_tier_ups  # noqa: E402


def robertson(pool):
    t, y1, y2, y3, k1, k2, k3 = pool.symbols("t y1 y2 y3 k1 k2 k3")
    rhs = [-k1 * y1 + k3 * y2 * y3, k1 * y1 - k2 * y2**2 - k3 * y2 * y3, k2 * y2**2]
    return rhs, t, [y1, y2, y3], [k1, k2, k3]


K = (0.04, 3e7, 1e4)


def robertson_numpy(t, y, k1, k2, k3):
    return np.array([-k1 * y[0] + k3 * y[1] * y[2], k1 * y[0] - k2 * y[1] ** 2 - k3 * y[1] * y[2], k2 * y[1] ** 2])


def robertson_jac(t, y, k1, k2, k3):
    return np.array([[-k1, k3 * y[2], k3 * y[1]],
                     [k1, -2 * k2 * y[1] - k3 * y[2], -k3 * y[1]],
                     [0.0, 2 * k2 * y[1], 0.0]])


@pytest.mark.parametrize("method", ["BDF", "Radau"])
def test_robertson_matches_a_hand_written_solve_and_a_tight_reference(method):
    pool = ak.ExprPool()
    ode = ak.compile_ode(*robertson(pool))
    y0, span = [1.0, 0.0, 0.0], (0.0, 1e5)
    ours = solve_ivp(ode.fun, span, y0, method=method, jac=ode.jac, args=K, rtol=1e-6, atol=1e-10)
    theirs = solve_ivp(robertson_numpy, span, y0, method=method, jac=robertson_jac, args=K, rtol=1e-6, atol=1e-10)
    assert ours.success and ours.nfev == theirs.nfev and ours.njev == theirs.njev
    np.testing.assert_allclose(ours.y, theirs.y, rtol=1e-7, atol=1e-15)  # same steps, rounding apart
    ref = solve_ivp(robertson_numpy, span, y0, method="Radau", jac=robertson_jac, args=K, rtol=1e-11, atol=1e-16)
    np.testing.assert_allclose(ours.y[:, -1], ref.y[:, -1], rtol=1e-4, atol=1e-10)
    np.testing.assert_allclose(ours.y[:, -1].sum(), 1.0, rtol=1e-9)  # mass is conserved


def mass_action_network(pool, n_species, n_reactions, seed):
    """Random reactions A + B -> C (+ A -> B) with mass-action rates: the rhs as
    expressions and as a NumPy function for the reference."""
    rng = np.random.default_rng(seed)
    ys = pool.symbols(" ".join(f"s{i}" for i in range(n_species)))
    t = pool.symbol("t")
    reactions = []
    for r in range(n_reactions):
        if r < n_species:
            a, c = r, (r + 1) % n_species
            reactions.append(((a,), (c,), 10 ** rng.uniform(-2, 0)))
        else:
            a, b, c = rng.choice(n_species, 3, replace=False)
            reactions.append(((a, b), (c,), 10 ** rng.uniform(-1, 3)))
    rhs = [pool.constant(0.0)] * n_species
    for reactants, products, k in reactions:
        rate = k
        for i in reactants:
            rate = rate * ys[i]
        for i in reactants:
            rhs[i] = rhs[i] - rate
        for i in products:
            rhs[i] = rhs[i] + rate

    # The same network as a stoichiometric matrix S: rhs = S @ rates, J = S @ d(rates)/dy.
    S = np.zeros((n_species, n_reactions))
    for r, (reactants, products, _) in enumerate(reactions):
        S[list(reactants), r] -= 1
        S[list(products), r] += 1
    k = np.array([rk for _, _, rk in reactions])
    first = np.array([re[0] for re, _, _ in reactions])
    bi = np.array([len(re) == 2 for re, _, _ in reactions])
    second = np.array([re[1] if len(re) == 2 else re[0] for re, _, _ in reactions])
    idx = np.arange(n_reactions)

    def numpy_rhs(_t, y):
        return S @ (k * y[first] * np.where(bi, y[second], 1.0))

    def numpy_jac(_t, y):
        D = np.zeros((n_reactions, n_species))
        np.add.at(D, (idx, first), k * np.where(bi, y[second], 1.0))
        np.add.at(D, (idx[bi], second[bi]), k[bi] * y[first[bi]])
        return S @ D

    return rhs, t, list(ys), numpy_rhs, numpy_jac


@functools.lru_cache(maxsize=None)
def network_reference():
    """The 100-species network solved with hand-written NumPy fun and jac, tightly."""
    _, _, _, numpy_rhs, numpy_jac = mass_action_network(ak.ExprPool(), 100, 300, seed=3)
    ref = solve_ivp(numpy_rhs, (0, 10.0), np.full(100, 0.01), method="Radau", jac=numpy_jac, rtol=1e-10, atol=1e-15)
    return ref.y[:, -1]


@pytest.mark.parametrize("method", ["BDF", "Radau"])
def test_mass_action_network_of_100_species(method):
    pool = ak.ExprPool()
    rhs, t, ys, _, _ = mass_action_network(pool, 100, 300, seed=3)
    ode = ak.compile_ode(rhs, t, ys)
    assert 100 < len(ode.rows) < 2000  # sparse: a few entries per row
    y0 = np.full(100, 0.01)
    sol = solve_ivp(ode.fun, (0, 10.0), y0, method=method, jac=ode.jac, rtol=1e-7, atol=1e-12)
    assert sol.success
    ref = network_reference()
    np.testing.assert_allclose(sol.y[:, -1], ref, rtol=1e-4, atol=1e-10)
    # The sparse Jacobian and its pattern describe the same matrix as the dense one.
    sparse = ak.compile_ode(rhs, t, ys, sparse=True)
    J = sparse.jac(0.0, y0)
    np.testing.assert_array_equal(J.toarray(), ode.jac(0.0, y0))
    assert (ode.jac_sparsity.toarray() != 0).sum() == len(ode.rows)
    fd = solve_ivp(ode.fun, (0, 10.0), y0, method="BDF", jac_sparsity=ode.jac_sparsity, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(fd.y[:, -1], ref, rtol=1e-4, atol=1e-10)


def test_vectorized_fun_and_argument_errors():
    pool = ak.ExprPool()
    ode = ak.compile_ode(*robertson(pool))
    y = np.random.default_rng(0).random((3, 5))
    out = ode.fun(0.0, y, *K)
    assert out.shape == (3, 5)
    for j in range(5):
        np.testing.assert_allclose(out[:, j], robertson_numpy(0.0, y[:, j], *K), rtol=1e-15)
    sol = solve_ivp(ode.fun, (0, 1.0), [1.0, 0.0, 0.0], method="BDF", vectorized=True, args=K)
    assert sol.success
    with pytest.raises(ak.ArityError, match="parameter"):
        ode.fun(0.0, y[:, 0])
    with pytest.raises(ak.ShapeError, match=r"\(3,\)"):
        ode.fun(0.0, np.ones(4), *K)
    with pytest.raises(ak.ArityError, match="one right-hand side per state"):
        ak.compile_ode([pool.symbol("y1")], "t", ["y1", "y2"])


def integrand(pool):
    x, a = pool.symbols("x a")
    return ak.exp(-a * x * x) * ak.cos(3 * x), [x, a]


def test_quad_with_low_level_callable_equals_quad_with_python():
    pool = ak.ExprPool()
    e, xs = integrand(pool)
    f = ak.compile_expr(e, xs)
    llc = f.low_level_callable()
    ours = quad(llc, 0.0, 5.0, args=(0.7,))
    theirs = quad(lambda x, a: math.exp(-a * x * x) * math.cos(3 * x), 0.0, 5.0, args=(0.7,))
    assert ours[0] == pytest.approx(theirs[0], rel=1e-14) and ours[1] == pytest.approx(theirs[1], rel=1e-6)
    exact = math.sqrt(math.pi / 0.7) / 2 * math.exp(-9 / (4 * 0.7))  # the integral to infinity
    assert ours[0] == pytest.approx(exact, abs=1e-7)


def test_low_level_callable_outlives_its_function_and_checks_arity():
    pool = ak.ExprPool()
    e, xs = integrand(pool)
    llc = ak.compile_expr(e, xs, ak.CompileConfig(tier="cranelift")).low_level_callable()
    gc.collect()
    assert quad(llc, 0.0, 1.0, args=(0.7,))[0] > 0
    with pytest.warns(Warning):  # quad passes 1 argument for 2 inputs: NaN, and quad says so
        r = quad(llc, 0.0, 1.0)
    assert math.isnan(r[0])
    with pytest.raises(ak.ArityError, match="one output"):
        ak.compile_expr([e, e], xs).low_level_callable()


def test_calls_from_quad_count_towards_tier_up():
    pool = ak.ExprPool()
    e, xs = integrand(pool)
    f = ak.compile_expr(e, xs, cache=False)
    assert f.adaptive and f.tier == "interpreter"
    llc = f.low_level_callable()
    for _ in range(2000):
        quad(llc, 0.0, 5.0, args=(0.7,))
        if f.tier != "interpreter":
            break
    wait_for_tier_ups(30)
    assert f.tier != "interpreter", ak.explain(f)
    assert quad(llc, 0.0, 5.0, args=(0.7,))[0] == pytest.approx(quad(lambda x, a: math.exp(-a * x * x) * math.cos(3 * x),
                                                                     0.0, 5.0, args=(0.7,))[0], rel=1e-14)


def test_nquad_with_low_level_callable():
    from scipy.integrate import nquad

    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    llc = ak.compile_expr(ak.exp(-x * x - y * y), [x, y]).low_level_callable()
    ours = nquad(llc, [[-3, 3], [-3, 3]])
    theirs = nquad(lambda u, v: math.exp(-u * u - v * v), [[-3, 3], [-3, 3]])
    assert ours[0] == pytest.approx(theirs[0], rel=1e-14)
    assert ours[0] == pytest.approx(math.pi * math.erf(3) ** 2, rel=1e-10)
