"""MediaCache: LRU bounds, TTL, single flight, errors and cancellation."""

from __future__ import annotations

import asyncio

import pytest

from omni_sglang.media.cache import MediaCache


def counting(value, delay=0.0):
    calls = []

    async def work():
        calls.append(1)
        await asyncio.sleep(delay)
        return value

    return work, calls


async def test_single_flight_decodes_once_for_concurrent_callers():
    cache = MediaCache()
    work, calls = counting("v", delay=0.05)
    results = await asyncio.gather(*[cache.get_or_decode("k", work, len) for _ in range(5)])
    assert results == ["v"] * 5
    assert len(calls) == 1
    assert (cache.hits, cache.misses, cache.decodes) == (4, 1, 1)
    assert await cache.get_or_decode("k", work, len) == "v"
    assert (cache.hits, cache.decodes) == (5, 1)


async def test_lru_is_bounded_in_bytes_and_entries():
    cache = MediaCache(max_bytes=10, max_entries=2)
    for key in "abc":
        work, _ = counting(key * 4)
        await cache.get_or_decode(key, work, len)
    assert len(cache) == 2 and cache.nbytes == 8  # "a" was evicted by the entry bound
    work, calls = counting("a" * 4)
    await cache.get_or_decode("a", work, len)
    assert calls == [1]
    big, _ = counting("x" * 11)
    await cache.get_or_decode("big", big, len)  # larger than the cache: not kept
    assert cache.nbytes <= 10 and len(cache) == 2


async def test_recently_used_entry_survives_eviction():
    cache = MediaCache(max_bytes=100, max_entries=2)
    for key in "ab":
        work, _ = counting(key)
        await cache.get_or_decode(key, work, len)
    await cache.get_or_decode("a", counting("a")[0], len)  # touch a
    await cache.get_or_decode("c", counting("c")[0], len)  # evicts b, not a
    work, calls = counting("a")
    await cache.get_or_decode("a", work, len)
    assert calls == []


async def test_errors_reach_every_waiter_and_are_not_cached():
    cache = MediaCache()
    calls = []

    async def fail():
        calls.append(1)
        await asyncio.sleep(0.02)
        raise ValueError("bad")

    results = await asyncio.gather(
        *[cache.get_or_decode("k", fail, len) for _ in range(3)], return_exceptions=True
    )
    assert all(isinstance(r, ValueError) for r in results)
    assert len(calls) == 1
    with pytest.raises(ValueError):
        await cache.get_or_decode("k", fail, len)
    assert len(calls) == 2


async def test_one_waiter_cancelled_does_not_cancel_the_others():
    cache = MediaCache()
    work, calls = counting("v", delay=0.1)
    first = asyncio.create_task(cache.get_or_decode("k", work, len))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(cache.get_or_decode("k", work, len))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == "v"
    assert first.cancelled() and len(calls) == 1


async def test_fetch_cache_single_flight_and_ttl():
    cache = MediaCache(fetch_ttl=0.1)
    work, calls = counting(b"bytes", delay=0.05)
    got = await asyncio.gather(*[cache.get_or_fetch("u", work) for _ in range(3)])
    assert got == [b"bytes"] * 3 and len(calls) == 1
    assert (cache.fetch_hits, cache.fetch_misses, cache.fetches) == (2, 1, 1)
    await asyncio.sleep(0.15)
    await cache.get_or_fetch("u", work)
    assert len(calls) == 2  # expired, fetched again
