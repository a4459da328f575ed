"""The "large" section: compile time against tape size, per tier.

Generated models in the shape of the large-model issue: sums of products of sine and
cosine terms over 50 inputs with 100 outputs, from about 10^3 to 7*10^4 tape operations.
For each tier, the time from tape to callable (``compile_expr`` with the cache off and
LLVM's disk cache off) and that time per operation: a flat column is linear compile
time. The LLVM tier is measured up to ``llvm_max_ops`` (it spends ~0.2 ms per operation).
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any, Dict, List, Sequence

import alkahest as ak
from alkahest import tiers


def model(n_terms: int, n_inputs: int = 50, n_outputs: int = 100, seed: int = 0):
    """(outputs, inputs): ``n_outputs`` sums of ``n_terms / n_outputs`` terms
    ``c * f(a + d) * b * c2`` with f sine or cosine and a, b, c2 drawn from the inputs."""
    rnd = random.Random(seed)
    pool = ak.ExprPool()
    xs = pool.symbols(" ".join(f"x{i}" for i in range(n_inputs)))
    outs = []
    per = max(1, n_terms // n_outputs)
    for _ in range(n_outputs):
        acc = None
        for _ in range(per):
            a, b, c = rnd.sample(xs, 3)
            f = rnd.choice([ak.sin, ak.cos])
            term = rnd.uniform(-1, 1) * f(a + rnd.uniform(0, 1)) * b * c
            acc = term if acc is None else acc + term
        outs.append(acc)
    return outs, list(xs)


def rows(terms: Sequence[int] = (200, 1000, 4000, 12000), llvm_max_ops: int = 25_000) -> List[Dict[str, Any]]:
    out = []
    for n in terms:
        outs, xs = model(n)
        ops = ak.lower(outs, xs).n_ops
        for tier in tiers.HOST:
            if tier.unavailable() or (tier.per_opt_level and ops > llvm_max_ops):
                continue
            config = ak.CompileConfig(tier=tier.name, cache_dir=False)
            start = time.perf_counter()
            f = ak.compile_expr(outs, xs, config, cache=False)
            seconds = time.perf_counter() - start
            out.append({"tier": tier.name, "ops": ops, "compiled_on": f.tier, "seconds": seconds,
                        "us_per_op": seconds / ops * 1e6})
            print(f"  large {tier.name:12s} {ops:7d} ops  {seconds * 1e3:9.1f} ms  {seconds / ops * 1e6:6.1f} us/op",
                  file=sys.stderr)
    return out


def markdown(result: List[Dict[str, Any]]) -> str:
    lines = ["| tier | tape ops | compiled on | compile (ms) | per op (us) |", "|---|---:|---|---:|---:|"]
    for r in result:
        lines.append(f"| {r['tier']} | {r['ops']} | {r['compiled_on']} | {r['seconds'] * 1e3:.1f} | {r['us_per_op']:.1f} |")
    return "\n".join(lines)
