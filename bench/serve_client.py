"""The HTTP side of ``bench.serve_mix``: workloads, one timed chat request, one sweep cell.

Any OpenAI-compatible server works: requests are plain Chat Completions with media as
data: URIs (what NIM, SGLang and vLLM all accept), ``ignore_eos`` so every request
generates exactly ``max_tokens`` (SGLang and vLLM both take it), and reasoning switched
with ``chat_template_kwargs.enable_thinking``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import orjson

WORKLOADS = ("text", "image", "video", "audio", "mixed")
PROMPTS = (
    "Tell me about Paris.",
    "Describe a sunset over the sea in detail.",
    "Explain how a bicycle stays upright.",
    "Write a short story about a lighthouse keeper.",
)


@functools.cache
def _media_uri(kind: str) -> str:
    # Imported here: synthesising media needs Pillow/ffmpeg, a peer-only run does not.
    from omni_sglang.media import synth

    if kind == "image":
        data, mime = synth.image_bytes("PNG", (448, 336)), "image/png"
    elif kind == "video":
        data, mime = synth.video_bytes(4.0, (320, 240), 10), "video/mp4"
    elif kind == "audio":
        data, mime = synth.audio_bytes("wav", 4.0), "audio/wav"
    else:
        raise ValueError(kind)
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def messages_for(workload: str, index: int) -> list[dict[str, Any]]:
    """The ``index``-th request of a workload: ``mixed`` cycles through the other four."""
    kind = WORKLOADS[index % 4] if workload == "mixed" else workload
    text = PROMPTS[index % len(PROMPTS)]
    if kind == "text":
        return [{"role": "user", "content": text}]
    part = f"{kind}_url"
    content = [{"type": part, part: {"url": _media_uri(kind)}}, {"type": "text", "text": text}]
    return [{"role": "user", "content": content}]


@dataclass
class RequestResult:
    ok: bool
    error: str = ""
    started: float = 0.0
    ttft: float | None = None  # seconds to the first generated text
    e2e: float = 0.0
    itl: list[float] = field(default_factory=list)  # seconds between tokens
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Target:
    base_url: str
    model: str
    api_key: str | None = None
    ignore_eos: bool = True


def chat_body(
    target: Target,
    messages: list[dict[str, Any]],
    *,
    max_tokens: int,
    reasoning: bool,
    stream: bool,
    temperature: float,
    top_p: float,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": target.model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "chat_template_kwargs": {"enable_thinking": reasoning},
        "stream": stream,
    }
    if target.ignore_eos:
        body["ignore_eos"] = True
    if stream:
        # Per-chunk token counts (vLLM, SGLang and we support it) make ITL per token exact
        # when a chunk carries several tokens.
        body["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
    return body


async def timed_request(
    client: httpx.AsyncClient, target: Target, body: dict[str, Any]
) -> RequestResult:
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    result = RequestResult(ok=False, started=time.perf_counter())
    try:
        if body["stream"]:
            await _streamed(client, body, headers, result)
        else:
            resp = await client.post("/v1/chat/completions", json=body, headers=headers)
            result.e2e = time.perf_counter() - result.started
            if resp.status_code != 200:
                result.error = f"HTTP {resp.status_code}: {resp.text[:200]}"
                return result
            usage = resp.json().get("usage") or {}
            result.prompt_tokens = int(usage.get("prompt_tokens", 0))
            result.completion_tokens = int(usage.get("completion_tokens", 0))
            result.ok = True
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        result.e2e = time.perf_counter() - result.started
    return result


async def _streamed(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str], out: RequestResult
) -> None:
    last_tokens, last_time = 0, out.started
    async with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as resp:
        if resp.status_code != 200:
            await resp.aread()
            out.error = f"HTTP {resp.status_code}: {resp.text[:200]}"
            out.e2e = time.perf_counter() - out.started
            return
        async for line in resp.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            now = time.perf_counter()
            chunk = orjson.loads(line[6:])
            if "error" in chunk:
                out.error = f"stream error: {chunk['error']}"
                break
            usage = chunk.get("usage") or {}
            text = any(_delta_text(c.get("delta") or {}) for c in chunk.get("choices") or [])
            if usage:
                out.prompt_tokens = int(usage.get("prompt_tokens", out.prompt_tokens))
                out.completion_tokens = int(usage.get("completion_tokens", 0))
            if not text:
                continue
            # Tokens this chunk carries: from continuous usage if the server sends it.
            new = out.completion_tokens - last_tokens if usage else 1
            new = max(new, 1)
            if out.ttft is None:
                out.ttft = now - out.started
            else:
                out.itl.extend([(now - last_time) / new] * new)
            last_tokens, last_time = out.completion_tokens if usage else last_tokens + new, now
    out.e2e = time.perf_counter() - out.started
    if out.ttft is None and not out.error:
        out.error = "the stream carried no text"
    out.ok = not out.error


def _delta_text(delta: dict[str, Any]) -> bool:
    return bool(delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning"))


def percentiles(values: list[float], scale: float = 1000.0) -> dict[str, float] | None:
    """p50/p90/p99/mean in milliseconds (``scale`` 1000 from seconds)."""
    if not values:
        return None
    arr = np.asarray(values, dtype=np.float64) * scale
    return {
        "mean": round(float(arr.mean()), 3),
        "p50": round(float(np.percentile(arr, 50)), 3),
        "p90": round(float(np.percentile(arr, 90)), 3),
        "p99": round(float(np.percentile(arr, 99)), 3),
    }


def summarize(results: list[RequestResult], duration: float) -> dict[str, Any]:
    good = [r for r in results if r.ok]
    out_tokens = sum(r.completion_tokens for r in good)
    in_tokens = sum(r.prompt_tokens for r in good)
    tpot = [
        (r.e2e - r.ttft) / (r.completion_tokens - 1)
        for r in good
        if r.ttft is not None and r.completion_tokens > 1
    ]
    errors = [r.error for r in results if not r.ok]
    return {
        "requests": len(results),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:3],
        "duration_s": round(duration, 3),
        "request_throughput": round(len(good) / duration, 3) if duration else 0.0,
        "output_token_throughput": round(out_tokens / duration, 2) if duration else 0.0,
        "total_token_throughput": round((in_tokens + out_tokens) / duration, 2)
        if duration
        else 0.0,
        "prompt_tokens_mean": round(in_tokens / len(good), 1) if good else 0,
        "completion_tokens_mean": round(out_tokens / len(good), 1) if good else 0,
        "ttft_ms": percentiles([r.ttft for r in good if r.ttft is not None]),
        "itl_ms": percentiles([x for r in good for x in r.itl]),
        "tpot_ms": percentiles(tpot),
        "e2e_ms": percentiles([r.e2e for r in good]),
    }


async def run_cell(
    target: Target,
    bodies: list[dict[str, Any]],
    concurrency: int,
    on_done: Callable[[], None] = lambda: None,
    timeout: float = 600.0,
) -> tuple[list[RequestResult], float]:
    """Send ``bodies`` with at most ``concurrency`` in flight (a closed loop, as
    SGLang's and vLLM's serving benchmarks do with ``--max-concurrency``)."""
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    results: list[RequestResult] = []
    async with httpx.AsyncClient(
        base_url=target.base_url, timeout=timeout, limits=limits
    ) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                results.append(await timed_request(client, target, body))
                on_done()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        duration = time.perf_counter() - started
    return results, duration
