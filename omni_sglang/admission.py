"""Admission control: a bound on requests in flight, a per-request time limit, and no
new work while draining. A full server says so at once (503 + Retry-After) instead of
queueing without bound; a request past its time limit is aborted (504), freeing its slot.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator
from typing import TypeVar

from omni_sglang.errors import RequestTimeoutError, ServiceUnavailableError

T = TypeVar("T")


class Admission:
    def __init__(self, limit: int, timeout_s: float | None):
        self.limit = limit
        self.timeout_s = timeout_s
        self.active = 0
        self.draining = False

    def admit(self) -> Ticket:
        if self.draining:
            raise ServiceUnavailableError("the server is shutting down; retry on another replica")
        if self.active >= self.limit:
            raise ServiceUnavailableError(
                f"the server is at capacity ({self.active} requests in flight, the "
                f"max_concurrent_requests limit); retry in a moment"
            )
        self.active += 1
        return Ticket(self)


class Ticket:
    """One admitted request's slot; released exactly once, however the request ends."""

    def __init__(self, admission: Admission):
        self._admission = admission
        self._held = True
        self.started = time.monotonic()
        self._deadline = time.monotonic() + admission.timeout_s if admission.timeout_s else None

    def release(self) -> None:
        if self._held:
            self._held = False
            self._admission.active -= 1

    def guard(self, stream: AsyncIterator[T]) -> AsyncIterator[T]:
        """``stream`` within the deadline, releasing the slot when it ends -- or, if the
        response is dropped before anyone iterates it, when it is garbage collected."""
        guarded = self._wrap(stream)
        weakref.finalize(guarded, self.release)
        return guarded

    async def _wrap(self, stream: AsyncIterator[T]) -> AsyncIterator[T]:
        try:
            while True:
                remaining = None if self._deadline is None else self._deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise RequestTimeoutError(self._timeout_message())
                try:
                    async with asyncio.timeout(remaining):
                        item = await stream.__anext__()
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise RequestTimeoutError(self._timeout_message()) from None
                yield item
        finally:
            self.release()
            await stream.aclose()  # type: ignore[attr-defined]

    def _timeout_message(self) -> str:
        return (
            f"the request took longer than this server's {self._admission.timeout_s:g} s limit "
            f"(request_timeout_seconds) and was aborted"
        )
