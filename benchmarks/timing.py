"""Timing helper shared by the benchmark sections."""

from __future__ import annotations

import timeit


def best_time(fn, budget: float) -> float:
    """Best per-call time over repeats of a loop that runs at least ~budget/5 seconds."""
    fn()
    number = 1
    while True:
        t = timeit.timeit(fn, number=number)
        if t >= budget / 5 or number >= 1 << 20:
            break
        number *= 4
    repeats = max(3, min(7, int(budget / max(t, 1e-9))))
    return min(timeit.repeat(fn, number=number, repeat=repeats)) / number
