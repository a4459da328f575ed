"""Compile an expression, evaluate it on a million points, compare with NumPy."""

import time

import numpy as np

import alkahest as ak

pool = ak.ExprPool()
x, y = pool.symbols("x y")
expr = ak.sin(x) * ak.cos(y) + ak.exp(-x * x)

f = ak.compile_expr(expr, [x, y])
print(f"expression : {expr}")
print(f"compiled   : {f!r}")
print(f"f(0.5, 0.25) = {f(0.5, 0.25):.17g}")

rng = np.random.default_rng(0)
xs, ys = rng.uniform(-3, 3, 10**6), rng.uniform(-3, 3, 10**6)


def best_of(fn, repeat=7):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


t_ak, out = best_of(lambda: ak.numpy_eval(f, xs, ys))
t_par, out_par = best_of(lambda: ak.numpy_eval_par(f, xs, ys))
t_np, ref = best_of(lambda: np.sin(xs) * np.cos(ys) + np.exp(-xs * xs))

print(f"1e6 points : sum = {out.sum():.12g} (NumPy {ref.sum():.12g}), max |diff| = {np.abs(out - ref).max():.2e}")
print(f"alkahest   : {t_ak * 1e3:7.2f} ms  (1 thread)")
print(f"alkahest   : {t_par * 1e3:7.2f} ms  ({ak._native.default_threads()} threads)")
print(f"NumPy      : {t_np * 1e3:7.2f} ms  -> alkahest is {t_np / t_ak:.2f}x NumPy on one thread")
assert np.array_equal(out, out_par)
