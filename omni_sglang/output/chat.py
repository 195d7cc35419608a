"""Engine outputs -> OpenAI chat completion objects (whole, or SSE chunks)."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from omni_sglang.engines.base import EngineOutput
from omni_sglang.metrics import record_reasoning
from omni_sglang.output.choice import ChoiceDelta, ChoiceStream, collect
from omni_sglang.output.logprobs import TokenNames, chat_content
from omni_sglang.output.usage import finish_reason_name, usage_dict


def _delta_dict(
    delta: ChoiceDelta, reasoning_fields: tuple[str, ...], call_id: Callable[[int], str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if delta.reasoning:
        for name in reasoning_fields:
            out[name] = delta.reasoning
    if delta.content:
        out["content"] = delta.content
    if delta.tool_calls:
        calls = []
        for call in delta.tool_calls:
            item: dict[str, Any] = {"index": call.index}
            if call.name is not None:
                item.update(id=call_id(call.index), type="function")
                item["function"] = {"name": call.name, "arguments": call.arguments}
            else:
                item["function"] = {"arguments": call.arguments}
            calls.append(item)
        out["tool_calls"] = calls
    return out


class ChatAssembler:
    """Feeds outputs of every choice through its ``ChoiceStream``."""

    def __init__(
        self,
        rid: str,
        model: str,
        n: int,
        make_stream: Callable[[], ChoiceStream],
        reasoning_fields: tuple[str, ...],
        logprobs: TokenNames | None = None,
    ):
        """``logprobs``: how to name tokens when the request asked for logprobs."""
        self.rid = rid
        self.media_tokens: dict[str, int] = {}
        self.model = model
        self.created = int(time.time())
        self.streams = [make_stream() for _ in range(n)]
        self.reasoning_fields = reasoning_fields
        self.prompt_tokens = 0
        self.cached_tokens = 0
        self._call_ids: dict[tuple[int, int], str] = {}
        self._names = logprobs
        #: Per choice: logprobs of tokens not yet sent (a chunk with nothing to show
        #: is not sent; its tokens' logprobs go with the next one).
        self.logprobs: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        self._logprobs_sent = [0] * n

    def call_id(self, choice: int, index: int) -> str:
        """OpenAI-style ids, unique across requests (clients match results by id)."""
        key = (choice, index)
        if key not in self._call_ids:
            self._call_ids[key] = f"call_{uuid.uuid4().hex[:24]}"
        return self._call_ids[key]

    def feed(self, out: EngineOutput) -> tuple[ChoiceDelta, bool]:
        """Returns this output's delta and whether its choice just finished."""
        self.prompt_tokens = out.prompt_tokens
        self.cached_tokens = max(self.cached_tokens, out.cached_tokens)
        self.media_tokens = out.media_tokens or self.media_tokens
        stream = self.streams[out.index]
        if self._names is not None and out.output_token_logprobs:
            self.logprobs[out.index] += chat_content(
                self._names, out.output_token_logprobs, out.output_top_logprobs
            )
        delta = stream.feed(out.text, out.token_ids)
        if out.finish_reason is not None:
            stream.finish_reason = out.finish_reason
            tail = stream.finish()
            delta.reasoning += tail.reasoning
            delta.content += tail.content
            delta.tool_calls.extend(tail.tool_calls)
            return delta, True
        return delta, False

    def logprobs_object(self, index: int, whole: bool = False) -> dict[str, Any] | None:
        """A choice's ``logprobs``: all of them, or those since the last chunk."""
        if self._names is None:
            return None
        start = 0 if whole else self._logprobs_sent[index]
        self._logprobs_sent[index] = len(self.logprobs[index])
        content = self.logprobs[index][start:]
        return {"content": content, "refusal": None} if whole else {"content": content}

    def usage(self) -> dict[str, Any]:
        return usage_dict(
            self.prompt_tokens,
            sum(s.completion_tokens for s in self.streams),
            sum(s.reasoning_tokens for s in self.streams),
            self.cached_tokens,
            self.media_tokens,
        )

    def finish_reason(self, index: int) -> str:
        stream = self.streams[index]
        return finish_reason_name(stream.finish_reason, stream.made_tool_calls)


async def chat_response(asm: ChatAssembler, outputs: AsyncIterator[EngineOutput]) -> dict[str, Any]:
    deltas: list[list[ChoiceDelta]] = [[] for _ in asm.streams]
    async for out in outputs:
        delta, _ = asm.feed(out)
        deltas[out.index].append(delta)
    choices = []
    for index, stream in enumerate(asm.streams):
        final = collect(stream, deltas[index])
        message: dict[str, Any] = {"role": "assistant", "content": final.content}
        if final.reasoning is not None:
            for name in asm.reasoning_fields:
                message[name] = final.reasoning or None
        if final.tool_calls:
            message["tool_calls"] = [
                {"id": asm.call_id(index, i), "type": "function", "function": call}
                for i, call in enumerate(final.tool_calls)
            ]
            message["content"] = final.content or None
        choices.append(
            {
                "index": index,
                "message": message,
                "logprobs": asm.logprobs_object(index, whole=True),
                "finish_reason": asm.finish_reason(index),
            }
        )
    usage = asm.usage()
    record_reasoning(usage)
    return {
        "id": asm.rid,
        "object": "chat.completion",
        "created": asm.created,
        "model": asm.model,
        "choices": choices,
        "usage": usage,
    }


async def chat_chunks(
    asm: ChatAssembler,
    outputs: AsyncIterator[EngineOutput],
    include_usage: bool,
    continuous_usage: bool = False,
) -> AsyncIterator[dict[str, Any]]:
    def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": asm.rid,
            "object": "chat.completion.chunk",
            "created": asm.created,
            "model": asm.model,
            "choices": choices,
        }
        if include_usage:
            body["usage"] = usage
        return body

    for index in range(len(asm.streams)):
        yield chunk(
            [
                {
                    "index": index,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ]
        )
    async for out in outputs:
        delta, finished = asm.feed(out)
        body = _delta_dict(delta, asm.reasoning_fields, functools.partial(asm.call_id, out.index))
        if not body and not finished:
            continue
        choice = {
            "index": out.index,
            "delta": body,
            "logprobs": asm.logprobs_object(out.index),
            "finish_reason": asm.finish_reason(out.index) if finished else None,
        }
        yield chunk([choice], asm.usage() if continuous_usage else None)
    usage = asm.usage()
    record_reasoning(usage)
    if include_usage:
        yield chunk([], usage)
