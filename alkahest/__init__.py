"""Alkahest: symbolic expressions compiled to fast native code.

>>> import numpy as np
>>> from alkahest import ExprPool, compile_expr, numpy_eval, sin
>>> pool = ExprPool()
>>> x, y = pool.symbols("x y")
>>> f = compile_expr(x**2 + sin(y), [x, y])
>>> f(3.0, 0.0)
9.0
>>> numpy_eval(f, np.array([1.0, 2.0]), 0.0)
array([1., 4.])
"""

import os as _os

from . import _native, errors, persist
from ._native import CompiledFn, Expr, ExprPool, Tape
from .api import compile_expr, eval_expr
from .backends.cuda import CudaConfig, CudaFn, compile_cuda
from .batch import numpy_eval, numpy_eval_par
from .cache import CacheStats, CompileCache, default_cache
from .compile import lower
from .config import AVAILABLE_TIERS, KNOWN_TIERS, CompileConfig
from .derivatives import JacobianFn, compile_jacobian, diff, gradient, hessian, jacobian, jacobian_sparsity
from .dispatch import DispatchReport, TierUp, explain
from .embed import emit_c, horner, to_stablehlo
from .errors import *  # noqa: F401,F403 - the exception classes belong to the public API
from .functions import *  # noqa: F401,F403
from .functions import __all__ as _functions
from .interop.evaluate import evaluate
from .interop.lambdify import lambdify
from .interop.sympy import from_sympy, to_sympy
from .ode import ODE, compile_ode
from .optimizer import OptimizeReport, optimize
from .text import parse

# No pool lock may be held across a fork: the child would wait for it forever.
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(before=_native._close_pools_for_fork, after_in_parent=_native._open_pools_after_fork,
                         after_in_child=_native._open_pools_after_fork)

__version__: str = _native.__version__  # the Cargo workspace version, the one version number

__all__ = [
    "ExprPool", "Expr", "Tape", "CompiledFn", "CompileConfig", "CompileCache", "CacheStats",
    "compile_expr", "eval_expr", "lower", "numpy_eval", "numpy_eval_par", "default_cache",
    "KNOWN_TIERS", "AVAILABLE_TIERS", "errors", "persist", "emit_c", "horner", "to_stablehlo",
    "compile_cuda", "CudaConfig", "CudaFn", "explain", "DispatchReport", "TierUp",
    "parse", "from_sympy", "to_sympy", "lambdify", "evaluate",
    "diff", "gradient", "jacobian", "hessian", "jacobian_sparsity", "compile_jacobian", "JacobianFn",
    "compile_ode", "ODE", "optimize", "OptimizeReport",
] + errors.__all__ + _functions
