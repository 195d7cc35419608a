"""Chat completion chunks -> a Responses API ``Response`` and its stream events.

``/v1/responses`` runs the chat pipeline; this turns its chunks (reasoning, content and
tool-call deltas, the finish reason, the usage) into OpenAI's output items: a
``reasoning`` item, a ``message`` with ``output_text``, ``function_call`` items, each
opened, streamed and closed with the event types the ``openai`` SDK parses. A whole
(non-streamed) response is the same events' final state, so the two always agree.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _usage(chat: dict[str, Any]) -> dict[str, Any]:
    return {
        "input_tokens": chat["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": chat["prompt_tokens_details"]["cached_tokens"]},
        "output_tokens": chat["completion_tokens"],
        "output_tokens_details": chat["completion_tokens_details"],
        "total_tokens": chat["total_tokens"],
    }


class ResponseBuilder:
    """One response's output items, built from its chat chunks; every method returns
    the events that step produced."""

    def __init__(self, base: dict[str, Any], reasoning_fields: tuple[str, ...], summary: bool):
        """``base``: the response's request-given fields; ``summary``: the client asked
        for a reasoning summary (the reasoning is short enough to be its own)."""
        self.response: dict[str, Any] = {
            "id": new_id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "status": "in_progress",
            "error": None,
            "incomplete_details": None,
            **base,
            "output": [],
            "usage": None,
        }
        self._reasoning_fields = reasoning_fields
        self._summary = summary
        self._seq = 0
        self._open: dict[str, Any] | None = None
        self._calls: dict[int, dict[str, Any]] = {}
        self._finish: str | None = None

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        self._seq += 1
        return {"type": kind, "sequence_number": self._seq - 1, **fields}

    def _snapshot(self, kind: str) -> dict[str, Any]:
        return self._event(kind, response=copy.deepcopy(self.response))

    def start(self) -> list[dict[str, Any]]:
        return [self._snapshot("response.created"), self._snapshot("response.in_progress")]

    # -- items --------------------------------------------------------------------

    def _where(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"item_id": item["id"], "output_index": self.response["output"].index(item)}

    def _add(self, item: dict[str, Any], part: dict[str, Any] | None) -> list[dict[str, Any]]:
        events = self._close()
        self.response["output"].append(item)
        self._open = item
        events.append(
            self._event(
                "response.output_item.added",
                output_index=len(self.response["output"]) - 1,
                item=copy.deepcopy(item),
            )
        )
        if part is not None:
            item["content"].append(part)
            events.append(
                self._event(
                    "response.content_part.added",
                    **self._where(item),
                    content_index=0,
                    part=dict(part),
                )
            )
        return events

    def _opened(self, kind: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        if self._open is not None and self._open["type"] == kind:
            return self._open, []
        item: dict[str, Any]
        part: dict[str, Any]
        if kind == "reasoning":
            item = {"id": new_id("rs"), "type": "reasoning", "summary": [], "content": []}
            part = {"type": "reasoning_text", "text": ""}
        else:
            item = {"id": new_id("msg"), "type": "message", "role": "assistant", "content": []}
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        item["status"] = "in_progress"
        return item, self._add(item, part)

    def _reasoning(self, text: str) -> list[dict[str, Any]]:
        item, events = self._opened("reasoning")
        item["content"][0]["text"] += text
        where = self._where(item)
        events.append(
            self._event("response.reasoning_text.delta", **where, content_index=0, delta=text)
        )
        return events

    def _text(self, text: str, logprobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        item, events = self._opened("message")
        part = item["content"][0]
        part["text"] += text
        part["logprobs"] += logprobs
        where = self._where(item)
        events.append(
            self._event(
                "response.output_text.delta",
                **where,
                content_index=0,
                delta=text,
                logprobs=logprobs,
            )
        )
        return events

    def _call(self, delta: dict[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        function = delta.get("function", {})
        if delta.get("id") is not None:  # a new call: its name comes first
            item = {
                "id": new_id("fc"),
                "type": "function_call",
                "call_id": delta["id"],
                "name": function["name"],
                "arguments": "",
                "status": "in_progress",
            }
            self._calls[delta["index"]] = item
            events += self._add(item, None)
        item = self._calls[delta["index"]]
        if function.get("arguments"):
            item["arguments"] += function["arguments"]
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    **self._where(item),
                    delta=function["arguments"],
                )
            )
        return events

    def _close(self) -> list[dict[str, Any]]:
        item, self._open = self._open, None
        if item is None:
            return []
        item["status"] = "incomplete" if self._finish == "length" else "completed"
        where = self._where(item)
        events = []
        if item["type"] == "reasoning":
            part = item["content"][0]
            events.append(
                self._event(
                    "response.reasoning_text.done", **where, content_index=0, text=part["text"]
                )
            )
            events.append(self._part_done(where, part))
            if self._summary:
                events += self._summarize(item, where)
        elif item["type"] == "message":
            part = item["content"][0]
            events.append(
                self._event(
                    "response.output_text.done",
                    **where,
                    content_index=0,
                    text=part["text"],
                    logprobs=part["logprobs"],
                )
            )
            events.append(self._part_done(where, part))
        else:
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    **where,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            )
        events.append(
            self._event(
                "response.output_item.done",
                output_index=where["output_index"],
                item=copy.deepcopy(item),
            )
        )
        return events

    def _part_done(self, where: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
        return self._event("response.content_part.done", **where, content_index=0, part=part)

    def _summarize(self, item: dict[str, Any], where: dict[str, Any]) -> list[dict[str, Any]]:
        text = item["content"][0]["text"]
        part = {"type": "summary_text", "text": text}
        item["summary"] = [part]
        at = {**where, "summary_index": 0}
        return [
            self._event("response.reasoning_summary_part.added", **at, part=dict(part, text="")),
            self._event("response.reasoning_summary_text.delta", **at, delta=text),
            self._event("response.reasoning_summary_text.done", **at, text=text),
            self._event("response.reasoning_summary_part.done", **at, part=part),
        ]

    # -- chunks -------------------------------------------------------------------

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """One chat completion chunk (of a single choice) -> its events."""
        if chunk.get("usage") is not None:
            self.response["usage"] = _usage(chunk["usage"])
        events: list[dict[str, Any]] = []
        for choice in chunk["choices"]:
            delta = choice["delta"]
            reasoning = next((delta[f] for f in self._reasoning_fields if delta.get(f)), None)
            if reasoning:
                events += self._reasoning(reasoning)
            if delta.get("content"):
                logprobs = (choice.get("logprobs") or {}).get("content") or []
                events += self._text(delta["content"], [] if reasoning else logprobs)
            for call in delta.get("tool_calls") or []:
                events += self._call(call)
            self._finish = choice["finish_reason"] or self._finish
        return events

    def finish(self) -> list[dict[str, Any]]:
        events = self._close()
        if self._finish == "length":
            self.response["status"] = "incomplete"
            self.response["incomplete_details"] = {"reason": "max_output_tokens"}
            return [*events, self._snapshot("response.incomplete")]
        if self._finish == "abort":
            self.response["status"] = "failed"
            self.response["error"] = {"code": "server_error", "message": "generation aborted"}
            return [*events, self._snapshot("response.failed")]
        self.response["status"] = "completed"
        return [*events, self._snapshot("response.completed")]

    def assistant_message(self) -> dict[str, Any]:
        """The output as the chat message a later turn continues from."""
        message: dict[str, Any] = {"role": "assistant", "content": None}
        for item in self.response["output"]:
            if item["type"] == "reasoning":
                message["reasoning_content"] = item["content"][0]["text"]
            elif item["type"] == "message":
                message["content"] = (message["content"] or "") + item["content"][0]["text"]
            else:
                call = {"name": item["name"], "arguments": item["arguments"]}
                message.setdefault("tool_calls", []).append(
                    {"id": item["call_id"], "type": "function", "function": call}
                )
        return message


async def response_events(
    builder: ResponseBuilder, chunks: AsyncIterator[dict[str, Any]]
) -> AsyncIterator[dict[str, Any]]:
    for event in builder.start():
        yield event
    async for chunk in chunks:
        for event in builder.feed(chunk):
            yield event
    for event in builder.finish():
        yield event
