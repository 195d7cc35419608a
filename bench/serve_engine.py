"""The engine alone: the same CPU engine and tiny model the server runs, in-process, fed
the exact token ids the server would build for the same chat requests (the server's own
chat-template code renders them), with the same sampling. The difference to the HTTP
figures is what the server adds per request: HTTP, JSON, validation, templating,
tokenization, detokenization, reasoning parsing, SSE, and the client's own work.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from bench.serve_client import RequestResult
from omni_sglang.adapter.chat_template import render_chat_prompt
from omni_sglang.engines.base import EngineRequest
from omni_sglang.engines.cpu.engine import CpuEngine
from omni_sglang.protocol.openai import ChatCompletionRequest


def prompt_ids(tokenizer: Any, body: dict[str, Any]) -> list[int]:
    """Token ids of a chat request body, rendered as the server renders it."""
    fields = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    req = ChatCompletionRequest.model_validate(fields)
    return list(tokenizer(render_chat_prompt(tokenizer, req), add_special_tokens=False).input_ids)


async def _one(
    engine: CpuEngine, ids: list[int], params: dict[str, Any], stream: bool = True
) -> RequestResult:
    request = EngineRequest(
        rid=f"bench-{uuid.uuid4().hex}", input_ids=ids, sampling_params=params, stream=stream
    )
    result = RequestResult(ok=False, started=time.perf_counter(), prompt_tokens=len(ids))
    last = result.started
    async for out in engine.generate(request):
        if not out.token_ids:
            continue
        now = time.perf_counter()
        if result.ttft is None:
            result.ttft = now - result.started
        else:
            result.itl.extend([(now - last) / len(out.token_ids)] * len(out.token_ids))
        last = now
        result.completion_tokens = out.completion_tokens
    result.e2e = time.perf_counter() - result.started
    result.ok = True
    return result


async def run_engine_cell(
    engine: CpuEngine, bodies: list[dict[str, Any]], concurrency: int
) -> tuple[list[RequestResult], float]:
    """The same closed loop as the HTTP cell, calling ``engine.generate`` directly."""
    jobs = [
        (
            prompt_ids(engine.tokenizer, body),
            {
                "max_new_tokens": body["max_tokens"],
                "ignore_eos": bool(body.get("ignore_eos")),
                "temperature": body["temperature"],
                "top_p": body["top_p"],
            },
            bool(body["stream"]),
        )
        for body in bodies
    ]
    results: list[RequestResult] = []

    async def worker() -> None:
        while jobs:
            ids, params, stream = jobs.pop(0)
            results.append(await _one(engine, ids, params, stream))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, time.perf_counter() - started


async def start_engine(model_path: Path) -> CpuEngine:
    engine = CpuEngine(model_path)
    await engine.start()
    warm = {"max_new_tokens": 4, "ignore_eos": True, "temperature": 0.0}
    await _one(engine, [1, 2, 3], warm)
    return engine
