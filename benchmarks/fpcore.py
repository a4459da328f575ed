"""A reader for the FPCore benchmarks alkahest's optimiser is measured on (FPBench's
``hamming-ch3.fpcore`` and ``herbie.fpcore``, in ``tests/data/fpbench``).

It reads the subset those files use: ``(FPCore (args) :name "..." :pre cond body)`` with
arithmetic (``+ - * /``, unary ``-``), ``sqrt exp log sin cos tan atan pow fabs``,
comparisons and ``and``/``or`` in preconditions. Each benchmark becomes its expression
over alkahest symbols, a sampling domain per argument (from the precondition's simple
bounds, ``(>= x 0)``, ``(< -1 x 1)``) and the whole precondition as a NumPy predicate.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

import alkahest as ak

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "fpbench"
FILES = ("hamming-ch3.fpcore", "herbie.fpcore")
BIG = float(np.finfo(np.float64).max)


@dataclass
class Benchmark:
    name: str
    args: List[str]
    body: Any  # the s-expression
    pre: Any = None

    def build(self, pool: ak.ExprPool) -> Tuple[ak.Expr, List[ak.Expr]]:
        syms = [pool.symbol(a) for a in self.args]
        return to_expr(self.body, dict(zip(self.args, syms))), syms

    def domain(self) -> Dict[str, Tuple[float, float]]:
        """Bounds per argument from the precondition's simple comparisons."""
        bounds = {a: [-BIG, BIG] for a in self.args}
        for clause in _clauses(self.pre):
            op, *terms = clause
            if op not in ("<", "<=", ">", ">=") or len(terms) < 2:
                continue
            chain = terms if op in ("<", "<=") else terms[::-1]
            strict = op in ("<", ">")
            for lo, hi in zip(chain, chain[1:]):
                if isinstance(hi, str) and hi in bounds and _is_number(lo):
                    v = float(lo)
                    bounds[hi][0] = max(bounds[hi][0], math.nextafter(v, math.inf) if strict else v)
                if isinstance(lo, str) and lo in bounds and _is_number(hi):
                    v = float(hi)
                    bounds[lo][1] = min(bounds[lo][1], math.nextafter(v, -math.inf) if strict else v)
        return {a: (lo, hi) for a, (lo, hi) in bounds.items()}

    def precondition(self) -> Optional[Callable[..., np.ndarray]]:
        if self.pre is None:
            return None
        return lambda *arrays: np.asarray(_np_eval(self.pre, dict(zip(self.args, arrays))), dtype=bool)


def _is_number(t: Any) -> bool:
    return isinstance(t, str) and re.fullmatch(r"[-+]?[0-9.]+(e[-+]?[0-9]+)?", t) is not None


def _clauses(pre: Any) -> List[Any]:
    if pre is None:
        return []
    if isinstance(pre, list) and pre and pre[0] == "and":
        return [c for p in pre[1:] for c in _clauses(p)]
    return [pre]


def tokens(text: str) -> List[str]:
    text = re.sub(r";[^\n]*", "", text)
    return re.findall(r'\(|\)|"[^"]*"|[^\s()]+', text)


def parse(text: str) -> List[Any]:
    """Every s-expression of ``text`` (lists of strings)."""
    stack: List[List[Any]] = [[]]
    for t in tokens(text):
        if t == "(":
            stack.append([])
        elif t == ")":
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(t)
    return stack[0]


def benchmarks(files=FILES) -> List[Benchmark]:
    out = []
    for name in files:
        for form in parse((DATA / name).read_text()):
            if not (isinstance(form, list) and form and form[0] == "FPCore"):
                continue
            args, rest = form[1], form[2:]
            props: Dict[str, Any] = {}
            while len(rest) > 1 and isinstance(rest[0], str) and rest[0].startswith(":"):
                props[rest[0]] = rest[1]
                rest = rest[2:]
            out.append(Benchmark(props.get(":name", "?").strip('"'), list(args), rest[0], props.get(":pre")))
    return out


_FUNCTIONS = {"sqrt": ak.sqrt, "exp": ak.exp, "log": ak.log, "sin": ak.sin, "cos": ak.cos, "tan": ak.tan,
              "atan": ak.atan, "fabs": ak.abs, "cbrt": ak.cbrt}


def to_expr(s: Any, env: Dict[str, ak.Expr]) -> Any:
    if isinstance(s, str):
        if s in env:
            return env[s]
        return float(s)
    op, *args = s
    vals = [to_expr(a, env) for a in args]
    if op == "-" and len(vals) == 1:
        return -vals[0]
    if op in ("+", "-", "*", "/"):
        acc = vals[0]
        for v in vals[1:]:
            acc = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
                   "/": lambda a, b: a / b}[op](acc, v)
        return acc
    if op == "pow":
        return vals[0] ** vals[1]
    if op in _FUNCTIONS:
        return _FUNCTIONS[op](vals[0])
    raise ValueError(f"FPCore operation {op!r} is not supported here")


def _np_eval(s: Any, env: Dict[str, np.ndarray]) -> Any:
    if isinstance(s, str):
        return env[s] if s in env else float(s)
    op, *args = s
    vals = [_np_eval(a, env) for a in args]
    with np.errstate(all="ignore"):
        if op in ("<", "<=", ">", ">="):
            f = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}[op]
            return functools.reduce(np.logical_and, [f(a, b) for a, b in zip(vals, vals[1:])])
        if op == "!=":
            return functools.reduce(np.logical_and, [np.not_equal(a, b) for i, a in enumerate(vals) for b in vals[i + 1:]])
        if op == "and":
            return functools.reduce(np.logical_and, vals)
        if op == "or":
            return functools.reduce(np.logical_or, vals)
        if op == "-" and len(vals) == 1:
            return -vals[0]
        if op in ("+", "-", "*", "/"):
            f = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}[op]
            acc = vals[0]
            for v in vals[1:]:
                acc = f(acc, v)
            return acc
        return {"sqrt": np.sqrt, "exp": np.exp, "log": np.log, "fabs": np.abs}[op](vals[0])
