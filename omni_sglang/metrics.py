"""Prometheus metrics, served at ``/metrics`` and ``/v1/metrics``.

They live in prometheus_client's default registry, so with the SGLang engine (which
runs in this process) SGLang's own metrics appear on the same page.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from omni_sglang.engines.base import EngineOutput

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_ITL = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

REQUESTS = Counter(
    "omni_sglang_requests_total", "HTTP requests by route and status", ["route", "status"]
)
TTFT = Histogram(
    "omni_sglang_time_to_first_token_seconds", "Request start to first output", buckets=_LATENCY
)
ITL = Histogram(
    "omni_sglang_inter_token_latency_seconds", "Time between outputs, per token", buckets=_ITL
)
E2E = Histogram(
    "omni_sglang_e2e_request_latency_seconds", "Request start to last output", buckets=_LATENCY
)
PROMPT_TOKENS = Counter("omni_sglang_prompt_tokens_total", "Prompt tokens (media included)")
CACHED_TOKENS = Counter(
    "omni_sglang_cached_prompt_tokens_total",
    "Prompt tokens served from the engine's prefix cache instead of computed",
)
CACHED_PER_REQUEST = Histogram(
    "omni_sglang_request_cached_prompt_tokens",
    "Prompt tokens a request found in the prefix cache",
    buckets=(0, 16, 64, 256, 1024, 4096, 16384, 65536, 262144),
)
HIT_RATIO = Gauge(
    "omni_sglang_prefix_cache_hit_ratio",
    "Share of all prompt tokens so far served from the prefix cache",
)
#: Prompt and cached tokens of the requests that got an answer (the ratio's terms).
_served = {"prompt": 0, "cached": 0}
HIT_RATIO.set_function(lambda: _served["cached"] / max(_served["prompt"], 1))
COMPLETION_TOKENS = Counter("omni_sglang_completion_tokens_total", "Generated tokens")
REASONING_TOKENS = Counter("omni_sglang_reasoning_tokens_total", "Generated reasoning tokens")
MEDIA_PREP = Histogram(
    "omni_sglang_media_preparation_seconds",
    "Fetch + decode + placeholder expansion of a request's media",
    buckets=_LATENCY,
)
IN_FLIGHT = Gauge("omni_sglang_requests_in_flight", "Admitted generation requests (queue depth)")
RUNNING = Gauge("omni_sglang_engine_running_requests", "Requests holding engine state")


def bind_gauges(in_flight: Callable[[], float], running: Callable[[], float]) -> None:
    IN_FLIGHT.set_function(in_flight)
    RUNNING.set_function(running)


async def timed(stream: AsyncIterator[EngineOutput], started: float) -> AsyncIterator[EngineOutput]:
    """Observe TTFT, inter-token latency, end-to-end latency and token counts."""
    last = None
    prompt = cached = 0
    completion: dict[int, int] = {}
    try:
        async for out in stream:
            now = time.monotonic()
            if last is None:
                TTFT.observe(now - started)
            elif out.token_ids:
                ITL.observe((now - last) / len(out.token_ids))
            last = now
            prompt, cached = out.prompt_tokens, max(cached, out.cached_tokens)
            completion[out.index] = out.completion_tokens
            yield out
    finally:
        PROMPT_TOKENS.inc(prompt)
        if last is not None:
            E2E.observe(last - started)
            CACHED_TOKENS.inc(cached)
            CACHED_PER_REQUEST.observe(cached)
            _served["prompt"] += prompt
            _served["cached"] += cached
        COMPLETION_TOKENS.inc(sum(completion.values()))
        await stream.aclose()  # type: ignore[attr-defined]


def record_reasoning(usage: dict[str, Any]) -> None:
    REASONING_TOKENS.inc(usage.get("completion_tokens_details", {}).get("reasoning_tokens", 0))
