"""The Responses API's stored responses: ``GET /v1/responses/{id}`` and
``previous_response_id``. In memory and bounded in count and in bytes (a conversation
holds its media inline; least recently used out first): a server restart forgets them,
and a deployment of several replicas shares none."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class StoredResponse:
    response: dict[str, Any]
    #: The conversation to continue from: its chat messages, this response's output
    #: last (its instructions left out, as OpenAI carries them over neither).
    messages: list[dict[str, Any]]

    def nbytes(self) -> int:
        return len(orjson.dumps(self.response)) + len(orjson.dumps(self.messages))


class ResponseStore:
    def __init__(self, capacity: int, max_bytes: int):
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[StoredResponse, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, stored: StoredResponse) -> None:
        """Keep ``stored`` (unless it alone is over the byte bound), dropping the least
        recently used until both bounds hold."""
        size = stored.nbytes()
        if self.capacity == 0 or size > self.max_bytes:
            return
        with self._lock:
            self._items[stored.response["id"]] = (stored, size)
            self._bytes += size
            while len(self._items) > self.capacity or self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def get(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            found = self._items.get(response_id)
            if found is None:
                return None
            self._items.move_to_end(response_id)
            return found[0]

    def delete(self, response_id: str) -> bool:
        with self._lock:
            found = self._items.pop(response_id, None)
            if found is not None:
                self._bytes -= found[1]
            return found is not None

    def __len__(self) -> int:
        return len(self._items)
