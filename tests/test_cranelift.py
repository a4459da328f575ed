"""The Cranelift tier's own behaviour: its size limit. (What every compiled tier shares,
bit-identical results, memory, errors: test_native_tiers.py.)"""

import alkahest as ak

INTERP = ak.CompileConfig(tier="interpreter")


def test_oversized_tape_falls_back_to_the_interpreter(pool):
    x = pool.symbol("x")
    e = x
    for i in range(2_000_001):  # the Cranelift tier compiles at most 2,000,000 operations
        e = e + (i % 5 + 0.5)
    f = ak.compile_expr(e, [x], ak.CompileConfig(tier="cranelift"), cache=False)
    assert f.tier == "interpreter"
    assert "cranelift" in f.fallback_reason and "at most" in f.fallback_reason
    assert f(0.0) == ak.compile_expr(e, [x], INTERP, cache=False)(0.0)


