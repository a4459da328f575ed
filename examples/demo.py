"""Compile an expression, evaluate it on a million points, compare with NumPy."""

import time

import numpy as np

import alkahest as ak

pool = ak.ExprPool()
x, y = pool.symbols("x y")
expr = ak.sin(x) * ak.cos(y) + ak.exp(-x * x)
print(f"expression : {expr}")

rng = np.random.default_rng(0)
xs, ys = rng.uniform(-3, 3, 10**6), rng.uniform(-3, 3, 10**6)


def best_of(fn, repeat=7):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


t_np, ref = best_of(lambda: np.sin(xs) * np.cos(ys) + np.exp(-xs * xs))
print(f"NumPy      : {t_np * 1e3:7.2f} ms for 1e6 points, sum = {ref.sum():.12g}")

results = []
for tier in ak.AVAILABLE_TIERS:
    t0 = time.perf_counter()
    f = ak.compile_expr(expr, [x, y], ak.CompileConfig(tier=tier), cache=False)
    t_compile = time.perf_counter() - t0
    t_one, out = best_of(lambda: ak.numpy_eval(f, xs, ys))
    t_par, out_par = best_of(lambda: ak.numpy_eval_par(f, xs, ys))
    assert np.array_equal(out, out_par)
    results.append(out)
    print(
        f"{tier:11s}: {t_one * 1e3:7.2f} ms (1 thread), {t_par * 1e3:6.2f} ms "
        f"({ak._native.default_threads()} threads), compiled in {t_compile * 1e3:.2f} ms, "
        f"f(0.5, 0.25) = {f(0.5, 0.25):.17g} -> {t_np / t_one:.1f}x NumPy on one thread"
    )

print(f"max |alkahest - NumPy| = {np.abs(results[0] - ref).max():.2e}; tiers agree bit for bit: "
      f"{all(np.array_equal(r, results[0]) for r in results)}")

# Without a tier, alkahest decides from the cost model whether this call pays for a compile.
f = ak.compile_expr(expr, [x, y], cache=False)
t0 = time.perf_counter()
ak.numpy_eval(f, xs, ys)
print(f"\nauto       : compile + first 1e6-point call {(time.perf_counter() - t0) * 1e3:.2f} ms, "
      f"now on {f.tier!r}")
print(ak.explain(f))
