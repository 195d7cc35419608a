"""Decoded media and fetched bytes, shared across requests.

Two caches, both single-flight (N concurrent requests for the same key do the work
once; the others await the same task):

- decoded media, keyed by content (sha256 of the bytes plus the decode options), LRU
  under a byte and an entry bound. Keyed by content, not URL, so the same video sent
  by URL in one request and as base64 in the next is decoded once.
- fetched bytes, keyed by URL, kept a short time (TTL): enough for NIM's "same video
  URL in several concurrent requests" and for the next turn of a conversation, short
  enough that a URL whose content changes is not served stale for long.

Cached values are shared: treat them as read-only (their numpy arrays are made so).
Everything runs on the event loop; no locks are needed.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
GiB = 1024**3
MiB = 1024**2


@dataclass
class _Slot(Generic[T]):
    value: T
    nbytes: int
    expires: float  # monotonic seconds; inf for no expiry


class _LRU(Generic[T]):
    """An LRU map bounded in entries and bytes, with optional per-entry expiry."""

    def __init__(self, max_bytes: int, max_entries: int):
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.nbytes = 0
        self._slots: OrderedDict[str, _Slot[T]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._slots)

    def get(self, key: str) -> _Slot[T] | None:
        slot = self._slots.get(key)
        if slot is None:
            return None
        if slot.expires <= time.monotonic():
            self._drop(key)
            return None
        self._slots.move_to_end(key)
        return slot

    def put(self, key: str, value: T, nbytes: int, ttl: float | None = None) -> None:
        if nbytes > self.max_bytes or self.max_entries <= 0:
            return  # larger than the whole cache: keeping it would evict everything
        if key in self._slots:
            self._drop(key)
        expires = float("inf") if ttl is None else time.monotonic() + ttl
        self._slots[key] = _Slot(value, nbytes, expires)
        self.nbytes += nbytes
        while self.nbytes > self.max_bytes or len(self._slots) > self.max_entries:
            self._drop(next(iter(self._slots)))

    def clear(self) -> None:
        self._slots.clear()
        self.nbytes = 0

    def _drop(self, key: str) -> None:
        slot = self._slots.pop(key)
        self.nbytes -= slot.nbytes


class MediaCache:
    def __init__(
        self,
        max_bytes: int = 1 * GiB,
        max_entries: int = 256,
        fetch_ttl: float = 30.0,
        fetch_max_bytes: int = 256 * MiB,
        fetch_max_entries: int = 64,
    ):
        self._decoded: _LRU[Any] = _LRU(max_bytes, max_entries)
        self._fetched: _LRU[bytes] = _LRU(fetch_max_bytes, fetch_max_entries)
        self.fetch_ttl = fetch_ttl
        self._decoding: dict[str, asyncio.Task[Any]] = {}
        self._fetching: dict[str, asyncio.Task[bytes]] = {}
        #: Decoded-media lookups answered from the cache or by joining a decode in flight.
        self.hits = 0
        #: Decoded-media lookups that started a decode.
        self.misses = 0
        #: Decodes that finished (successfully or not).
        self.decodes = 0
        self.fetch_hits = 0
        self.fetch_misses = 0
        self.fetches = 0

    def __len__(self) -> int:
        return len(self._decoded)

    @property
    def nbytes(self) -> int:
        return self._decoded.nbytes

    def clear(self) -> None:
        self._decoded.clear()
        self._fetched.clear()

    def stats(self) -> dict[str, int]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "decodes": self.decodes,
            "fetch_hits": self.fetch_hits,
            "fetch_misses": self.fetch_misses,
            "fetches": self.fetches,
            "entries": len(self._decoded),
            "bytes": self._decoded.nbytes,
        }

    async def get_or_decode(
        self, key: str, decode: Callable[[], Awaitable[T]], size_of: Callable[[T], int]
    ) -> T:
        slot = self._decoded.get(key)
        if slot is not None:
            self.hits += 1
            return slot.value
        if key in self._decoding:
            self.hits += 1
            return await asyncio.shield(self._decoding[key])

        self.misses += 1

        async def run() -> T:
            try:
                value = await decode()
            finally:
                self.decodes += 1
            self._decoded.put(key, value, size_of(value))
            return value

        return await self._start(self._decoding, key, run())

    async def get_or_fetch(self, key: str, fetch: Callable[[], Awaitable[bytes]]) -> bytes:
        slot = self._fetched.get(key)
        if slot is not None:
            self.fetch_hits += 1
            return slot.value
        if key in self._fetching:
            self.fetch_hits += 1
            return await asyncio.shield(self._fetching[key])

        self.fetch_misses += 1

        async def run() -> bytes:
            try:
                data = await fetch()
            finally:
                self.fetches += 1
            self._fetched.put(key, data, len(data), ttl=self.fetch_ttl)
            return data

        return await self._start(self._fetching, key, run())

    @staticmethod
    async def _start(inflight: dict[str, asyncio.Task[Any]], key: str, work: Awaitable[T]) -> T:
        task: asyncio.Task[T] = asyncio.ensure_future(work)
        inflight[key] = task

        def done(t: asyncio.Task[Any]) -> None:
            if inflight.get(key) is t:
                del inflight[key]
            if not t.cancelled():
                t.exception()  # retrieved: no "never retrieved" noise if every waiter left

        task.add_done_callback(done)
        # shield: one client going away must not cancel the work others are waiting for.
        return await asyncio.shield(task)
