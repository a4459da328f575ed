"""CompileCache: hits, LRU eviction, bounded memory, thread safety."""

import resource
import threading

import pytest

import alkahest as ak


def test_hits_and_misses(xy):
    x, y = xy
    cache = ak.CompileCache(capacity=10)
    f1 = cache.compile(x**2 + y, [x, y])
    f2 = cache.compile(x**2 + y, [x, y])
    f3 = cache.compile(y + x**2, [x, y])
    assert f1 is f2 is f3
    cache.compile(x**2 + y, [y, x])  # other input order: another function
    s = cache.stats()
    assert (s.hits, s.misses, s.compiles, s.size) == (2, 2, 2, 2)
    assert s.hit_rate == 0.5


def test_lru_eviction(pool):
    x = pool.symbol("x")
    cache = ak.CompileCache(capacity=2)
    a = cache.compile(x + 1, [x])
    cache.compile(x + 2, [x])
    assert cache.compile(x + 1, [x]) is a  # refreshes x + 1
    cache.compile(x + 3, [x])  # evicts x + 2
    s = cache.stats()
    assert (s.size, s.evictions) == (2, 1)
    assert cache.compile(x + 1, [x]) is a
    cache.compile(x + 2, [x])
    assert cache.stats().compiles == 4
    cache.capacity = 1
    assert len(cache) == 1 and cache.stats().evictions == 3


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        ak.CompileCache(capacity=0)


def test_config_is_part_of_the_key(xy):
    x, _ = xy
    cache = ak.CompileCache()
    a = cache.compile(x + 1, [x], ak.CompileConfig(vector_math=True))
    b = cache.compile(x + 1, [x], ak.CompileConfig(vector_math=False))
    assert a is not b and a.adaptive and b.adaptive
    # auto with a stated amount of work resolves to a tier and shares the explicit entry
    c = cache.compile(x + 1, [x], ak.CompileConfig(tier="interpreter"))
    d = cache.compile(x + 1, [x], ak.CompileConfig(expected_evals=10))
    assert c is d and c is not a and not c.adaptive
    # the LLVM tier's options are part of its key
    e = cache.compile(x + 1, [x], ak.CompileConfig(tier="llvm", opt_level=1))
    f = cache.compile(x + 1, [x], ak.CompileConfig(tier="llvm", opt_level=3))
    assert e is not f and e.backend.opt_level == 1 and f.backend.opt_level == 3


def test_thread_safe_and_exact(pool):
    x = pool.symbol("x")
    exprs = [x * i + 1 for i in range(50)]
    cache = ak.CompileCache(capacity=1000)

    def work():
        for e in exprs * 4:
            assert cache.compile(e, [x])(2.0) == ak.eval_expr(e, {x: 2.0})

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = cache.stats()
    assert s.hits + s.misses == 4 * 200
    assert s.size == 50
    assert s.compiles >= 50 and s.compiles == s.misses


def test_10k_distinct_expressions_stay_bounded():
    pool = ak.ExprPool()
    x, y = pool.symbols("x y")
    cache = ak.CompileCache(capacity=1000)

    def burst(offset):
        for i in range(10_000):
            cache.compile(ak.sin(x * (i + offset)) + y * i, [x, y])

    burst(0)
    rss_after_first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    burst(10_000)
    burst(20_000)
    rss_after_third = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    s = cache.stats()
    assert (s.size, s.misses, s.compiles, s.hits) == (1000, 30_000, 30_000, 0)
    assert s.evictions == 29_000
    # Peak RSS (KiB) may grow with the pool's nodes (kept on purpose), not with compiled functions.
    assert rss_after_third - rss_after_first < 64 * 1024
