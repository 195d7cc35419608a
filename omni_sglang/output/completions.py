"""Engine outputs -> OpenAI text completion objects (whole, or SSE chunks)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from omni_sglang.engines.base import EngineOutput, FinishReason
from omni_sglang.output.logprobs import CompletionLogprobs, TokenNames
from omni_sglang.output.usage import finish_reason_name, usage_dict

_DONE = object()


async def merge(
    streams: list[AsyncIterator[EngineOutput]],
) -> AsyncIterator[tuple[int, EngineOutput]]:
    """Interleave several engine streams as outputs arrive, tagged by stream position.

    Closing the merged iterator closes every source (aborting their requests).
    """
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def pump(pos: int, stream: AsyncIterator[EngineOutput]) -> None:
        try:
            async for out in stream:
                await queue.put((pos, out))
            await queue.put(_DONE)
        except BaseException as exc:
            await queue.put(exc)
            raise

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    live = len(tasks)
    try:
        while live:
            item = await queue.get()
            if item is _DONE:
                live -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


class CompletionAssembler:
    def __init__(
        self,
        rid: str,
        model: str,
        n: int,
        prompt_texts: list[str],
        logprobs: TokenNames | None = None,
    ):
        """``logprobs``: how to name tokens when the request asked for logprobs."""
        self.rid = rid
        self.model = model
        self.n = n
        self.created = int(time.time())
        self.prompt_texts = prompt_texts
        count = len(prompt_texts) * n
        self.texts = [""] * count
        self.finish: list[FinishReason | None] = [None] * count
        self.prompt_tokens = [0] * len(prompt_texts)
        self.completion_tokens = [0] * count
        self.echoed = [False] * count
        self.logprobs = [CompletionLogprobs(logprobs) for _ in range(count)] if logprobs else None
        self._logprobs_sent = [0] * count

    def logprobs_object(self, index: int, whole: bool = False) -> dict[str, Any] | None:
        """A choice's ``logprobs``: all of them, or those since the last chunk."""
        if self.logprobs is None:
            return None
        start = 0 if whole else self._logprobs_sent[index]
        self._logprobs_sent[index] = len(self.logprobs[index].tokens)
        return self.logprobs[index].since(start)

    def feed(self, pos: int, out: EngineOutput) -> tuple[int, str]:
        index = pos * self.n + out.index
        self.prompt_tokens[pos] = out.prompt_tokens
        self.completion_tokens[index] = out.completion_tokens
        text = out.text
        if not self.echoed[index]:
            self.echoed[index] = True
            text = self.prompt_texts[pos] + text
        self.texts[index] += text
        if self.logprobs is not None:
            logprobs = self.logprobs[index]
            if out.input_token_logprobs:  # echo: the prompt's, first
                logprobs.add(out.input_token_logprobs, out.input_top_logprobs)
            logprobs.add(out.output_token_logprobs or [], out.output_top_logprobs)
        if out.finish_reason is not None:
            self.finish[index] = out.finish_reason
        return index, text

    def usage(self) -> dict[str, Any]:
        return usage_dict(sum(self.prompt_tokens), sum(self.completion_tokens))


async def completion_response(
    asm: CompletionAssembler, outputs: AsyncIterator[tuple[int, EngineOutput]]
) -> dict[str, Any]:
    async for pos, out in outputs:
        asm.feed(pos, out)
    return {
        "id": asm.rid,
        "object": "text_completion",
        "created": asm.created,
        "model": asm.model,
        "choices": [
            {
                "index": i,
                "text": text,
                "logprobs": asm.logprobs_object(i, whole=True),
                "finish_reason": finish_reason_name(asm.finish[i]),
            }
            for i, text in enumerate(asm.texts)
        ],
        "usage": asm.usage(),
    }


async def completion_chunks(
    asm: CompletionAssembler, outputs: AsyncIterator[tuple[int, EngineOutput]], include_usage: bool
) -> AsyncIterator[dict[str, Any]]:
    async for pos, out in outputs:
        index, text = asm.feed(pos, out)
        finished = out.finish_reason is not None
        if not text and not finished:
            continue
        body: dict[str, Any] = {
            "id": asm.rid,
            "object": "text_completion",
            "created": asm.created,
            "model": asm.model,
            "choices": [
                {
                    "index": index,
                    "text": text,
                    "logprobs": asm.logprobs_object(index),
                    "finish_reason": finish_reason_name(out.finish_reason) if finished else None,
                }
            ],
        }
        if include_usage:
            body["usage"] = None
        yield body
    if include_usage:
        yield {
            "id": asm.rid,
            "object": "text_completion",
            "created": asm.created,
            "model": asm.model,
            "choices": [],
            "usage": asm.usage(),
        }
