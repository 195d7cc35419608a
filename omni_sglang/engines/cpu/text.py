"""Token ids to streamed text: incremental detokenization and stop strings.

Both work on a bounded window per step, so a long output costs the same per token as a
short one (decoding the whole output every step would be quadratic).
"""

from __future__ import annotations

from typing import Any


class IncrementalDetokenizer:
    """SGLang's/vLLM's two-offset scheme: decode a small window, emit what is new.

    Text ending in U+FFFD is an incomplete UTF-8 sequence split across tokens; it is
    held back until the next token completes it (or flushed at the end).
    """

    def __init__(self, tokenizer: Any, skip_special_tokens: bool = True):
        self._tokenizer = tokenizer
        self._skip = skip_special_tokens
        self._ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=self._skip))

    def push(self, token_id: int) -> str:
        self._ids.append(token_id)
        prefix = self._decode(self._ids[self._prefix_offset : self._read_offset])
        full = self._decode(self._ids[self._prefix_offset :])
        if len(full) > len(prefix) and not full.endswith("\ufffd"):
            self._prefix_offset = self._read_offset
            self._read_offset = len(self._ids)
            return full[len(prefix) :]
        return ""

    def flush(self) -> str:
        prefix = self._decode(self._ids[self._prefix_offset : self._read_offset])
        full = self._decode(self._ids[self._prefix_offset :])
        self._prefix_offset = self._read_offset = len(self._ids)
        return full[len(prefix) :]


class StopStringMatcher:
    """Finds stop strings in streamed text without ever emitting part of one.

    The longest tail of the text that could still grow into a stop string is held back;
    so a match always starts inside the held-back text or the new delta.
    """

    def __init__(self, stops: list[str], keep_stop: bool = False):
        self._stops = [s for s in stops if s]
        self._keep = keep_stop
        self._pending = ""

    def push(self, delta: str) -> tuple[str, str | None]:
        """Returns (text safe to emit, matched stop string or None)."""
        if not self._stops:
            return delta, None
        buf = self._pending + delta
        best: tuple[int, str] | None = None
        for stop in self._stops:
            pos = buf.find(stop)
            if pos != -1 and (best is None or pos < best[0]):
                best = (pos, stop)
        if best is not None:
            pos, stop = best
            self._pending = ""
            return buf[: pos + len(stop)] if self._keep else buf[:pos], stop
        hold = self._held_suffix(buf)
        self._pending = buf[len(buf) - hold :] if hold else ""
        return buf[: len(buf) - hold], None

    def _held_suffix(self, buf: str) -> int:
        longest = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(buf)), longest, -1):
                if buf.endswith(stop[:k]):
                    longest = k
                    break
        return longest

    def flush(self) -> str:
        out, self._pending = self._pending, ""
        return out
