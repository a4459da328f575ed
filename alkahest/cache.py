"""``CompileCache``: a bounded, thread-safe LRU cache of compiled functions."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Hashable, Optional

from . import _native
from ._native import CompiledFn
from . import tiers
from .compile import Exprs, Vars, normalise_shaped, rewritten, shaped, var_names
from .config import CompileConfig, checked
from .dispatch import build, remember_optimization, resolve
from .errors import ArgumentError


@dataclass(frozen=True)
class CacheStats:
    """Counters of a :class:`CompileCache`. ``hits + misses`` is the number of requests;
    ``compiles`` can exceed ``misses``' unique keys only when threads race on one key."""

    hits: int
    misses: int
    compiles: int
    evictions: int
    size: int
    capacity: int

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class CompileCache:
    """Compiled functions keyed by (pool, output ids, input ids, resolved tier, options).

    Building the same expression again gives the same ids (hash-consing), so a repeated
    ``cache.compile(x**2 + y, [x, y])`` is a dictionary look-up. The key holds the tier
    the request *resolves* to ("auto" for an adaptive function), so ``tier="auto"`` with
    ``expected_evals`` and an explicit request for the tier it picks share one entry.
    Least recently used entries are evicted beyond ``capacity``. Safe to share between
    threads.

    >>> cache = CompileCache(capacity=100)
    >>> f = cache.compile(x**2 + y, [x, y])  # doctest: +SKIP
    >>> cache.stats().compiles  # doctest: +SKIP
    1
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, CompiledFn] = OrderedDict()
        self._capacity = self._check_capacity(capacity)
        self._hits = self._misses = self._compiles = self._evictions = 0

    @staticmethod
    def _check_capacity(capacity: int) -> int:
        if not isinstance(capacity, int) or capacity < 1:
            raise ArgumentError(f"capacity must be a positive int, got {capacity!r}")
        return capacity

    @property
    def capacity(self) -> int:
        return self._capacity

    @capacity.setter
    def capacity(self, capacity: int) -> None:
        with self._lock:
            self._capacity = self._check_capacity(capacity)
            self._evict()

    def _evict(self) -> None:
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
            self._evictions += 1

    def compile(self, expr_or_list: Exprs, vars: Vars, config: Optional[CompileConfig] = None) -> CompiledFn:
        """Like :func:`alkahest.compile_expr`, returning a cached function when there is one."""
        config = checked(config)
        outputs, inputs, shape = normalise_shaped(expr_or_list, vars)
        pool = outputs[0].pool
        tape = None

        optimized = None

        def lowered() -> "_native.Tape":
            nonlocal tape, optimized
            if tape is None:
                rewritten_outputs, optimized = rewritten(outputs, inputs, config)
                tape = _native.lower(rewritten_outputs, inputs, fastmath=config.fastmath)
            return tape

        resolution = resolve(lowered, config)
        key: tuple = (
            pool.uid,
            tuple(e.id for e in outputs),
            tuple(v.id for v in inputs),
            resolution.tier,
            config.vector_math,
            config.fastmath,  # lowering reads it (integer powers), so every tier does
            config.dtype,
            config.optimize,
            shape,
        ) + tuple(getattr(config, option) for option in tiers.options(resolution.tier))
        with self._lock:
            fn = self._entries.get(key)
            if fn is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                return fn
            self._misses += 1
        fn = remember_optimization(shaped(build(lowered(), var_names(inputs), config, resolution), shape), optimized)
        with self._lock:
            self._compiles += 1
            existing = self._entries.get(key)
            if existing is not None:  # another thread compiled it meanwhile
                return existing
            self._entries[key] = fn
            self._evict()
        return fn

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, self._compiles, self._evictions, len(self._entries), self._capacity)

    def clear(self) -> None:
        """Drops every entry (the counters stay)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        s = self.stats()
        return f"CompileCache(size={s.size}, capacity={s.capacity}, hits={s.hits}, misses={s.misses})"


#: The cache ``compile_expr`` and ``eval_expr`` use unless told otherwise.
default_cache = CompileCache(capacity=256)
