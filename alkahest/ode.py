"""ODE right-hand sides for SciPy: ``compile_ode`` gives ``fun`` and ``jac`` that
``scipy.integrate.solve_ivp`` takes as they are, each one compiled kernel.

>>> pool = ExprPool(); t, y0, y1, k = pool.symbols("t y0 y1 k")
>>> ode = compile_ode([y1, -k * y0], t, [y0, y1], params=[k])
>>> ode.fun(0.0, np.array([1.0, 0.0]), 4.0)
array([ 0., -4.])
>>> ode.jac(0.0, np.array([1.0, 0.0]), 4.0)
array([[ 0.,  1.],
       [-4.,  0.]])
>>> from scipy.integrate import solve_ivp
>>> sol = solve_ivp(ode.fun, (0, np.pi), [1.0, 0.0], method="Radau", jac=ode.jac, args=(4.0,), rtol=1e-10, atol=1e-12)
>>> np.allclose(sol.y[:, -1], [1.0, 0.0], atol=1e-6)  # y'' = -4y has period pi
True
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np

from . import _native
from ._native import Expr
from .config import CompileConfig
from .derivatives import _csr, _inputs, _jacobian, _pattern
from .errors import ArityError, ShapeError

__all__ = ["compile_ode", "ODE"]

#: Calls of fun and jac a solve is assumed to make when no config says otherwise (stiff
#: solves make hundreds to tens of thousands): the tier is chosen for that work up front,
#: instead of starting on the interpreter and tiering up partway through the first solve.
EXPECTED_CALLS = 10_000


class ODE:
    """``dy/dt = rhs(t, y, p)`` compiled (made by :func:`compile_ode`).

    - ``fun(t, y, *p)``: the right-hand side, shape ``(n,)``; with ``y`` of shape
      ``(n, k)`` (``solve_ivp(..., vectorized=True)``) shape ``(n, k)``.
    - ``jac(t, y, *p)``: the Jacobian ``∂rhs/∂y``, a dense ``(n, n)`` array, or a
      ``scipy.sparse.csr_matrix`` if compiled with ``sparse=True`` (large systems with
      ``method="BDF"`` or ``"Radau"``).
    - ``jac_sparsity``: its structural non-zeros (``solve_ivp(jac_sparsity=...)`` when
      the Jacobian is estimated by finite differences instead).
    """

    def __init__(self, rhs_fn: Any, jac_fn: Any, n: int, n_params: int, rows: np.ndarray, cols: np.ndarray,
                 sparse: bool) -> None:
        self.rhs_fn, self.jac_fn = rhs_fn, jac_fn
        self.n_states, self.n_params = n, n_params
        self.rows, self.cols = rows, cols
        self.sparse = sparse
        self._n_in = 1 + n + n_params
        self._dense_pattern = len(rows) == n * n
        self._indptr = _csr(rows, cols, (n, n)).indptr if sparse else None
        self._scatter = ((rows * n + cols).astype(np.intp), n)

    @property
    def jac_sparsity(self) -> Any:
        return _csr(self.rows, self.cols, (self.n_states, self.n_states))

    def _point(self, t: float, y: np.ndarray, p: Sequence[float]) -> np.ndarray:
        if len(p) != self.n_params:
            raise ArityError(f"the ODE has {self.n_params} parameter(s), got {len(p)} (pass them as solve_ivp(args=...))")
        x = np.empty(self._n_in)
        x[0] = t
        x[1:1 + self.n_states] = y
        x[1 + self.n_states:] = p
        return x

    def _state(self, y: Any) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if y.shape[:1] != (self.n_states,) or y.ndim > 2:
            raise ShapeError(f"y must have shape ({self.n_states},) or ({self.n_states}, k), got {y.shape}")
        return y

    def _is_solve_ivp_call(self, y: Any, p: Sequence[float]) -> bool:
        """Whether this is solve_ivp's call (a float64 state vector, every parameter), which
        goes to Rust in one step."""
        return type(y) is np.ndarray and y.shape == (self.n_states,) and y.dtype == np.float64 and len(p) == self.n_params

    def fun(self, t: float, y: Any, *p: float) -> np.ndarray:
        if self._is_solve_ivp_call(y, p):
            return self.rhs_fn._eval_ode(t, y, p)
        y = self._state(y)
        if y.ndim == 1:
            return self.rhs_fn(self._point(t, y, p), out=np.empty(self.n_states))
        if len(p) != self.n_params:
            raise ArityError(f"the ODE has {self.n_params} parameter(s), got {len(p)}")
        out = np.empty(y.shape)
        _native.numpy_eval(self.rhs_fn, float(t), *y, *(float(v) for v in p), out=out if self.n_states > 1 else out[0])
        return out

    def jac(self, t: float, y: Any, *p: float) -> Any:
        if not self.sparse and self.jac_fn is not None and self._is_solve_ivp_call(y, p):
            return self.jac_fn._eval_ode(t, y, p, self._scatter)
        y = self._state(y)
        if y.ndim != 1:
            raise ShapeError("jac takes one state vector y of shape (n,)")
        n = self.n_states
        data = np.empty(len(self.rows))
        if self.jac_fn is not None:
            self.jac_fn(self._point(t, y, p), out=data)
        if self.sparse:
            import scipy.sparse as sp

            return sp.csr_matrix((data, self.cols, self._indptr), shape=(n, n))
        if self._dense_pattern:
            return data.reshape(n, n)
        J = np.zeros((n, n))
        J[self.rows, self.cols] = data
        return J

    def __repr__(self) -> str:
        return (f"ODE({self.n_states} states, {self.n_params} parameters, jac nnz={len(self.rows)}, "
                f"tier={self.rhs_fn.tier!r})")


def compile_ode(
    rhs: Sequence[Expr], t: Union[Expr, str], states: Sequence[Union[Expr, str]],
    params: Sequence[Union[Expr, str]] = (), config: Optional[CompileConfig] = None, *, sparse: bool = False,
) -> ODE:
    """Compiles ``dy/dt = rhs`` (one expression per state, in the symbols ``t``,
    ``states`` and ``params``) and its Jacobian in the states, by symbolic
    differentiation, into an :class:`ODE` whose ``fun`` and ``jac`` go to ``solve_ivp``
    as they are: ``solve_ivp(ode.fun, span, y0, method="BDF", jac=ode.jac, args=p)``.

    Without ``config`` the tier is chosen for ``EXPECTED_CALLS`` (10,000) calls of each,
    by the cost model, at compile time; pass ``CompileConfig(expected_calls=...)`` to state
    another number, or ``CompileConfig()`` for an adaptive function.
    """
    from .api import compile_expr

    rhs = list(rhs)
    if len(rhs) != len(states):
        raise ArityError(f"one right-hand side per state: {len(rhs)} expressions for {len(states)} states")
    if not rhs:
        raise ArityError("the ODE needs at least one state")
    inputs = _inputs(rhs, [t, *states, *params])
    ys = inputs[1:1 + len(states)]
    rows, cols, entries = _pattern(_jacobian(rhs, ys, "forward"))
    config = config or CompileConfig(expected_calls=EXPECTED_CALLS)
    rhs_fn = compile_expr(rhs, inputs, config)
    jac_fn = compile_expr(entries, inputs, config) if entries else None
    return ODE(rhs_fn, jac_fn, len(states), len(params), rows, cols, sparse)
