"""Derivatives as expressions of the same pool: ``diff``, ``gradient``, ``jacobian``,
``hessian``, and ``compile_jacobian`` for the values and the Jacobian in one kernel.

The derivative is built on the DAG (in Rust), in the pool of the function, so it
hash-conses with it: a compiled function of values and derivatives computes every
common subexpression once. A derivative that is structurally zero is the constant 0.

Forward or reverse mode: a Jacobian of ``m`` outputs in ``n`` inputs costs ``n`` forward
sweeps or ``m`` reverse sweeps over the DAG; ``mode="auto"`` picks the fewer (forward
when ``n <= m``), so a gradient (``m = 1``) is built in reverse mode and its size stays a
small constant times the function's whatever ``n`` is.

>>> pool = ExprPool(); x, y = pool.symbols("x y")
>>> diff(x**3 * sin(y), x)
sin(y)*(3*x**2)
>>> gradient(x * y + exp(x), [x, y])
[y + exp(x), x]
>>> f = compile_jacobian([x * y, x + y], [x, y])
>>> values, J = f(2.0, 3.0)
>>> values, J
(array([6., 5.]), array([[3., 2.],
       [1., 1.]]))
"""

from __future__ import annotations

from typing import Any, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import CompiledFn, Expr
from .compile import Exprs, Vars, normalise
from .config import CompileConfig
from .errors import ArgumentError, ArgumentTypeError, InvalidVarsError

Mode = Literal["auto", "forward", "reverse"]
_MODES = ("auto", "forward", "reverse")

__all__ = ["diff", "gradient", "jacobian", "hessian", "jacobian_sparsity", "compile_jacobian", "JacobianFn"]


def _symbol(pool: _native.ExprPool, v: Union[Expr, str]) -> Expr:
    if isinstance(v, str):
        return pool.symbol(v)
    if not isinstance(v, Expr) or v.op != "symbol":
        raise InvalidVarsError(f"derivatives are taken with respect to symbols, got {v!r}")
    return v


def _inputs(outputs: List[Expr], vars: Vars) -> List[Expr]:
    _, inputs = normalise(outputs, vars)
    inputs = [_symbol(outputs[0].pool, v) for v in inputs]
    if len({v.id for v in inputs}) != len(inputs):
        raise InvalidVarsError("vars lists a symbol twice")
    return inputs


def _zero_filled(pool: _native.ExprPool, exprs: Sequence[Optional[Expr]]) -> List[Expr]:
    zero = pool.constant(0.0)
    return [zero if e is None else e for e in exprs]


def diff(expr: Any, var: Union[Expr, str], n: int = 1) -> Any:
    """The ``n``-th derivative of ``expr`` with respect to the symbol ``var``; ``expr``
    may be a (nested) list or tuple of expressions, differentiated element by element
    with shared work. Same as ``expr.diff(var, n)`` for one expression.

    Every operation has a rule: ``abs``, ``min``, ``max``, ``copysign`` and ``where``
    differentiate the branch they select (``d|x|/dx`` is ``copysign(1, x)``);
    ``floor``, ``ceil``, ``round``, comparisons and logic have derivative 0 (true
    almost everywhere: at their jumps the derivative does not exist).

    >>> pool = ExprPool(); x = pool.symbol("x")
    >>> diff(erf(x), x)
    1.1283791670955126*exp(-(x*x))
    >>> diff([x**2, abs(x)], x, 2)
    [2, 0]
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ArgumentError(f"n must be a non-negative integer, got {n!r}")
    if isinstance(expr, Expr):
        return expr.diff(_symbol(expr.pool, var), n)
    if isinstance(expr, (list, tuple)):
        leaves: List[Expr] = []

        def collect(e: Any) -> None:
            if isinstance(e, (list, tuple)):
                for item in e:
                    collect(item)
            elif isinstance(e, Expr):
                leaves.append(e)
            else:
                raise ArgumentTypeError(f"diff() takes expressions or (nested) lists of them, found {type(e).__name__}")

        collect(expr)
        if not leaves:
            return type(expr)(expr)
        pool = leaves[0].pool
        v = _symbol(pool, var)
        done = leaves
        for _ in range(n):
            done = _zero_filled(pool, _native.derivative(done, v))
        it = iter(done)

        def rebuild(e: Any) -> Any:
            if isinstance(e, (list, tuple)):
                return type(e)(rebuild(item) for item in e)
            return next(it)

        return rebuild(expr)
    raise ArgumentTypeError(f"diff() takes an alkahest expression or a list of them, got {type(expr).__name__}")


def _mode(mode: str) -> str:
    if mode not in _MODES:
        raise ArgumentError(f"mode must be one of {_MODES}, got {mode!r}")
    return mode


def _jacobian(outputs: List[Expr], inputs: List[Expr], mode: str) -> List[List[Optional[Expr]]]:
    """Rows of the Jacobian, ``None`` where an entry is structurally zero."""
    if _mode(mode) == "auto":
        mode = "forward" if len(inputs) <= len(outputs) else "reverse"
    if mode == "reverse":
        return [_native.gradient(e, inputs) for e in outputs]
    columns = [_native.derivative(outputs, v) for v in inputs]
    return [[col[i] for col in columns] for i in range(len(outputs))]


def gradient(expr: Expr, vars: Vars, *, mode: Mode = "auto") -> List[Expr]:
    """``[∂expr/∂v for v in vars]``. ``mode="auto"`` uses reverse mode (one backward
    sweep, whatever the number of variables) unless there is a single variable.

    >>> pool = ExprPool(); x, y = pool.symbols("x y")
    >>> gradient(sqrt(x**2 + y**2), [x, y])
    [1/(2*sqrt(x**2 + y**2))*(2*x), 1/(2*sqrt(x**2 + y**2))*(2*y)]
    """
    if not isinstance(expr, Expr):
        raise ArgumentTypeError(f"gradient() takes one alkahest expression, got {type(expr).__name__}; use jacobian() for several")
    inputs = _inputs([expr], vars)
    return _zero_filled(expr.pool, _jacobian([expr], inputs, mode)[0])


def jacobian(exprs: Exprs, vars: Vars, *, mode: Mode = "auto") -> List[List[Expr]]:
    """The Jacobian as rows: ``J[i][j] = ∂exprs[i]/∂vars[j]``. ``mode="auto"`` takes
    forward mode when there are no more variables than expressions, else reverse.

    >>> pool = ExprPool(); r, t = pool.symbols("r t")
    >>> jacobian([r * cos(t), r * sin(t)], [r, t])
    [[cos(t), r*-sin(t)], [sin(t), r*cos(t)]]
    """
    outputs, _ = normalise(exprs, vars)
    inputs = _inputs(outputs, vars)
    pool = outputs[0].pool
    return [_zero_filled(pool, row) for row in _jacobian(outputs, inputs, mode)]


def hessian(expr: Expr, vars: Vars) -> List[List[Expr]]:
    """Second derivatives ``H[i][j] = ∂²expr/∂vars[i]∂vars[j]``: the gradient in reverse
    mode, then its Jacobian in forward mode.

    >>> pool = ExprPool(); x, y = pool.symbols("x y")
    >>> hessian(x**2 * y, [x, y])
    [[2*y, 2*x], [2*x, 0]]
    """
    if not isinstance(expr, Expr):
        raise ArgumentTypeError(f"hessian() takes one alkahest expression, got {type(expr).__name__}")
    inputs = _inputs([expr], vars)
    g = _zero_filled(expr.pool, _jacobian([expr], inputs, "reverse")[0])
    return [_zero_filled(expr.pool, row) for row in _jacobian(g, inputs, "forward")]


def _pattern(rows: List[List[Optional[Expr]]]) -> Tuple[np.ndarray, np.ndarray, List[Expr]]:
    """Row and column indices of the structurally non-zero entries, row by row (CSR
    order), and those entries."""
    r, c, entries = [], [], []
    for i, row in enumerate(rows):
        for j, e in enumerate(row):
            if e is not None:
                r.append(i)
                c.append(j)
                entries.append(e)
    return np.array(r, dtype=np.intp), np.array(c, dtype=np.intp), entries


def _csr(rows: np.ndarray, cols: np.ndarray, shape: Tuple[int, int], data: Optional[np.ndarray] = None) -> Any:
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("sparse Jacobians need SciPy: pip install 'alkahest[scipy]'") from None
    indptr = np.zeros(shape[0] + 1, dtype=np.intp)
    np.add.at(indptr, rows + 1, 1)
    np.cumsum(indptr, out=indptr)
    values = np.ones(len(rows)) if data is None else data
    return sp.csr_matrix((values, cols, indptr), shape=shape)


def jacobian_sparsity(exprs: Exprs, vars: Vars) -> Any:
    """The structural non-zeros of the Jacobian as a ``scipy.sparse.csr_matrix`` of
    ones (``solve_ivp``'s ``jac_sparsity``, ``least_squares``' ``jac_sparsity``).

    >>> pool = ExprPool(); x, y, z = pool.symbols("x y z")
    >>> jacobian_sparsity([x * y, floor(y) + z], [x, y, z]).toarray()
    array([[1., 1., 0.],
           [0., 0., 1.]])
    """
    outputs, _ = normalise(exprs, vars)
    inputs = _inputs(outputs, vars)
    rows, cols, _ = _pattern(_jacobian(outputs, inputs, "auto"))
    return _csr(rows, cols, (len(outputs), len(inputs)))


class JacobianFn:
    """Values and Jacobian of several expressions from one kernel (made by
    :func:`compile_jacobian`). ``f(x, y)`` returns ``(values, J)``: ``values`` of shape
    ``(m,)`` and ``J`` of shape ``(m, n)``; with arrays among the arguments, ``(m,
    *points)`` and ``(m, n, *points)``. ``f.nonzeros(...)`` returns ``(values, data)``
    with only the structurally non-zero entries, in the order of ``f.sparsity`` (CSR).
    """

    def __init__(self, fn: CompiledFn, m: int, n: int, rows: np.ndarray, cols: np.ndarray) -> None:
        self.fn = fn
        self.n_outputs, self.n_inputs = m, n
        self.rows, self.cols = rows, cols
        self._dense = len(rows) == m * n  # row-major, every entry: a reshape, no scatter

    @property
    def nnz(self) -> int:
        """Number of structurally non-zero Jacobian entries."""
        return len(self.rows)

    @property
    def sparsity(self) -> Any:
        """The pattern as a ``scipy.sparse.csr_matrix`` of ones."""
        return _csr(self.rows, self.cols, (self.n_outputs, self.n_inputs))

    @property
    def tier(self) -> str:
        return self.fn.tier

    def _eval(self, args: Tuple[Any, ...]) -> np.ndarray:
        """All outputs (values, then the non-zero entries) as one array of shape
        ``(m + nnz, *points)``."""
        k = self.n_outputs + self.nnz
        if all(isinstance(a, (float, int)) for a in args):
            point = np.empty(k)
            self.fn(*args, out=point)
            return point
        shape = np.broadcast_shapes(*(np.shape(a) for a in args))
        out = np.empty((k,) + shape)
        _native.numpy_eval(self.fn, *args, out=out if k > 1 else out[0])
        return out

    def nonzeros(self, *args: Any) -> Tuple[np.ndarray, np.ndarray]:
        """``(values, data)``: ``data[k]`` is entry ``(rows[k], cols[k])``."""
        out = self._eval(args)
        return out[: self.n_outputs], out[self.n_outputs:]

    def __call__(self, *args: Any) -> Tuple[np.ndarray, np.ndarray]:
        out = self._eval(args)
        m, n = self.n_outputs, self.n_inputs
        values, data = out[:m], out[m:]
        points = out.shape[1:]
        if self._dense:
            return values, data.reshape((m, n) + points)
        J = np.zeros((m, n) + points)
        J[self.rows, self.cols] = data
        return values, J

    def __repr__(self) -> str:
        return f"JacobianFn({self.n_outputs} outputs x {self.n_inputs} inputs, nnz={self.nnz}, tier={self.fn.tier!r})"


def compile_jacobian(
    exprs: Exprs, vars: Vars, config: Optional[CompileConfig] = None, *, wrt: Optional[Vars] = None,
    mode: Mode = "auto", cache: Any = None,
) -> JacobianFn:
    """Compiles the expressions and their Jacobian into one kernel: common
    subexpressions of values and derivatives are computed once per point. The
    function's inputs are ``vars``; the Jacobian's columns are ``wrt`` (default: all of
    ``vars``; name a subset to leave parameters out).

    >>> pool = ExprPool(); x, y = pool.symbols("x y")
    >>> f = compile_jacobian([exp(x) * y], [x, y])
    >>> values, J = f(np.zeros(3), np.arange(3.0))
    >>> J.shape, J[0, :, 2]
    ((1, 2, 3), array([2., 1.]))
    """
    from .api import compile_expr

    outputs, _ = normalise(exprs, vars)
    inputs = _inputs(outputs, vars)
    columns = inputs if wrt is None else _inputs(outputs, wrt)
    missing = [v.name for v in columns if v.id not in {u.id for u in inputs}]
    if missing:
        raise InvalidVarsError(f"wrt names {missing}, which are not among the inputs vars")
    rows, cols, entries = _pattern(_jacobian(outputs, columns, mode))
    fn = compile_expr(outputs + entries, inputs, config, cache=cache)
    return JacobianFn(fn, len(outputs), len(columns), rows, cols)
