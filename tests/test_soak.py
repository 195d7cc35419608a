"""Soak: many concurrent streams of text, images and tool calls for a fixed time, with
client disconnects and over-limit requests mixed in, against one dedicated server.

Every valid request runs twice at once, streamed and not, with the same seed: the
streamed text must equal its twin's (nothing lost, duplicated or reordered while the
engine batches other requests' decode steps). Afterwards the server's memory must not
have grown beyond a margin and every aborted request must have left the engine.

``OMNI_SGLANG_SOAK_SECONDS`` / ``OMNI_SGLANG_SOAK_CONCURRENCY`` lengthen it
(``bench/soak_long.py`` does); the defaults keep ``make test`` around a minute.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import pytest

from omni_sglang.media import synth
from tests.conftest import TINY, Server
from tests.tool_corpus import TOOLS, call

SECONDS = float(os.environ.get("OMNI_SGLANG_SOAK_SECONDS", "25"))
CONCURRENCY = int(os.environ.get("OMNI_SGLANG_SOAK_CONCURRENCY", "64"))
#: RSS the server may gain over the soak, after a warm-up round has paid for the
#: first-use allocations (torch kernels, media decoders, tokenizer caches).
RSS_MARGIN_MIB = float(os.environ.get("OMNI_SGLANG_SOAK_RSS_MARGIN_MIB", "200"))
REPORT = os.environ.get("OMNI_SGLANG_SOAK_REPORT")
NO_THINK = {"enable_thinking": False}

#: kind -> weight. Valid kinds run as twins; the rest check refusals and aborts.
MIX = {"text": 4, "image": 2, "tool": 2, "tool_free": 1, "disconnect": 2, "over_limit": 1}


@dataclass
class Report:
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    in_flight_streams: int = 0
    peak_streams: int = 0


@dataclass
class Collected:
    """What one choice said, streamed or not, in a comparable form."""

    reasoning: str = ""
    content: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    finish_reason: str | None = None


class Soak:
    def __init__(self, url: str, force_processor: str, tokenizer: Any):
        self.url = url
        self.force = force_processor
        self.tok = tokenizer
        self.report = Report()
        self.images = [
            "data:image/png;base64,"
            + base64.b64encode(synth.image_bytes("PNG", (24 + 8 * i, 16 + 8 * i))).decode()
            for i in range(4)
        ]
        # No pool limit: a pool smaller than the soak would queue requests in the client.
        self.client = httpx.AsyncClient(
            base_url=url,
            timeout=httpx.Timeout(180, connect=30),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
        )

    # -- request bodies --------------------------------------------------------------------

    def body(self, kind: str, rng: random.Random) -> dict[str, Any]:
        base: dict[str, Any] = {
            "model": TINY,
            "max_tokens": rng.randint(4, 20),
            "ignore_eos": True,
            "seed": rng.randrange(1 << 30),
            "temperature": rng.choice([0.0, 0.7, 1.0]),
        }
        text = rng.choice(["Hello", "Tell me about Paris", "Count to ten", "Why is the sky blue?"])
        if kind == "text":
            n = rng.choice([1, 1, 1, 2])
            if n > 1 and base["temperature"] == 0.0:
                base["temperature"] = 0.8  # n > 1 with greedy is n copies: sample instead
            return {**base, "n": n, "messages": [{"role": "user", "content": text}]}
        if kind == "image":
            parts = [
                {"type": "text", "text": text},
                {"type": "image_url", "image_url": {"url": rng.choice(self.images)}},
            ]
            return {**base, "messages": [{"role": "user", "content": parts}]}
        if kind == "tool":
            # Forced output: a real tool call goes through the parser, streamed and not.
            said = call("get_weather", city=rng.choice(["Paris", "Oslo", "Lima"]), days="3")
            ids = self.tok(said, add_special_tokens=False).input_ids
            return {
                **base,
                "max_tokens": len(ids) + 4,
                "ignore_eos": False,
                "messages": [{"role": "user", "content": text}],
                "tools": TOOLS,
                "chat_template_kwargs": NO_THINK,
                "custom_logit_processor": self.force,
                "custom_params": {
                    "force": ids,
                    "eos": self.tok.convert_tokens_to_ids("<|im_end|>"),
                },
            }
        if kind == "tool_free":  # the model's own (random) text through the tool parser
            return {
                **base,
                "messages": [{"role": "user", "content": text}],
                "tools": TOOLS,
                "tool_choice": "auto",
            }
        raise AssertionError(kind)

    # -- one request of each sort ------------------------------------------------------------

    async def twins(self, kind: str, rng: random.Random, tag: str) -> None:
        body = self.body(kind, rng)
        streamed, whole = await asyncio.gather(self.streamed(body, tag), self.whole(body, tag))
        if streamed is None or whole is None:
            return
        (s_choices, s_usage), (w_choices, w_usage) = streamed, whole
        if s_choices != w_choices:
            self.fail(tag, f"streamed {s_choices} != non-streamed {w_choices} for {body}")
        if s_usage != w_usage:
            self.fail(tag, f"usage streamed {s_usage} != non-streamed {w_usage}")
        if kind == "tool" and any(c.finish_reason != "tool_calls" for c in w_choices.values()):
            self.fail(tag, f"forced tool call not parsed: {w_choices}")
        self.report.counts[kind] += 1

    async def whole(
        self, body: dict[str, Any], tag: str
    ) -> tuple[dict[int, Collected], dict[str, Any]] | None:
        resp = await self.client.post("/v1/chat/completions", json=body)
        if resp.status_code != 200:
            self.fail(tag, f"non-streamed {resp.status_code}: {resp.text[:300]}")
            return None
        data = resp.json()
        out = {}
        for choice in data["choices"]:
            msg = choice["message"]
            out[choice["index"]] = Collected(
                reasoning=msg.get("reasoning") or "",
                content=msg.get("content") or "",
                tool_calls=[
                    (c["function"]["name"], c["function"]["arguments"])
                    for c in msg.get("tool_calls") or []
                ],
                finish_reason=choice["finish_reason"],
            )
        return out, data["usage"]

    async def streamed(
        self, body: dict[str, Any], tag: str
    ) -> tuple[dict[int, Collected], dict[str, Any]] | None:
        body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        self.report.in_flight_streams += 1
        self.report.peak_streams = max(self.report.peak_streams, self.report.in_flight_streams)
        try:
            async with self.client.stream("POST", "/v1/chat/completions", json=body) as resp:
                if resp.status_code != 200:
                    await resp.aread()
                    self.fail(tag, f"streamed {resp.status_code}: {resp.text[:300]}")
                    return None
                events = [e async for e in sse_events(resp)]
        finally:
            self.report.in_flight_streams -= 1
        return self.assemble(events, tag)

    def assemble(
        self, events: list[Any], tag: str
    ) -> tuple[dict[int, Collected], dict[str, Any]] | None:
        if not events or events[-1] != "[DONE]":
            self.fail(tag, f"stream did not end with [DONE]: {events[-2:]}")
            return None
        chunks = events[:-1]
        if any("error" in c for c in chunks):
            self.fail(tag, f"error event in stream: {chunks}")
            return None
        if len({c["id"] for c in chunks}) != 1:
            self.fail(tag, "chunks of one stream carry different ids")
        out: dict[int, Collected] = {}
        calls: dict[tuple[int, int], list[str]] = {}
        usage = [c["usage"] for c in chunks if c.get("usage")]
        for chunk in chunks:
            for choice in chunk["choices"]:
                got = out.setdefault(choice["index"], Collected())
                if got.finish_reason is not None:
                    self.fail(tag, f"choice {choice['index']} got a delta after it finished")
                delta = choice["delta"]
                got.reasoning += delta.get("reasoning") or ""
                got.content += delta.get("content") or ""
                for tc in delta.get("tool_calls") or []:
                    key = (choice["index"], tc["index"])
                    fn = tc.get("function") or {}
                    if key not in calls:
                        calls[key] = [fn.get("name") or "", ""]
                    calls[key][1] += fn.get("arguments") or ""
                got.finish_reason = choice.get("finish_reason") or got.finish_reason
        for (index, _), (name, args) in sorted(calls.items()):
            out[index].tool_calls.append((name, args))
        if len(usage) != 1:
            self.fail(tag, f"expected one usage chunk, got {len(usage)}")
            return None
        return out, usage[0]

    async def disconnect(self, rng: random.Random, tag: str) -> None:
        """Hang up mid-generation: the engine must drop the request (checked at the end)."""
        body = {
            "model": TINY,
            "max_tokens": 4000,
            "ignore_eos": True,
            "messages": [{"role": "user", "content": "Write a long story"}],
        }
        if rng.random() < 0.5:
            async with self.client.stream(
                "POST", "/v1/chat/completions", json={**body, "stream": True}
            ) as resp:
                if resp.status_code != 200:
                    self.fail(tag, f"disconnect stream got {resp.status_code}")
                    return
                lines = resp.aiter_lines()
                for _ in range(rng.randint(1, 4)):
                    await anext(lines, None)
        else:  # a non-streamed request the client gives up on
            try:
                await asyncio.wait_for(
                    self.client.post("/v1/chat/completions", json=body), rng.uniform(0.05, 0.5)
                )
                self.fail(tag, "a 4000-token request finished before the client gave up")
            except TimeoutError:
                pass
        self.report.counts["disconnect"] += 1

    async def over_limit(self, rng: random.Random, tag: str) -> None:
        user = [{"role": "user", "content": "Hi"}]
        cases: list[tuple[dict[str, Any], str]] = [
            ({"messages": user, "max_tokens": 100_000}, "context"),
            ({"messages": user, "n": 17, "max_tokens": 4}, "at most 16"),
            ({"messages": [{"role": "user", "content": "Paris " * 17_000}]}, "context"),
            ({"messages": user, "max_tokens": 4, "temperature": 9}, "temperature"),
        ]
        fields, fragment = rng.choice(cases)
        body = {"model": TINY, **fields, "stream": rng.random() < 0.5}
        resp = await self.client.post("/v1/chat/completions", json=body)
        error = resp.json().get("error") if resp.status_code == 400 else None
        if error is None or fragment not in error["message"]:
            self.fail(tag, f"over-limit {fragment!r}: {resp.status_code} {resp.text[:300]}")
        self.report.counts["over_limit"] += 1

    # -- driving ----------------------------------------------------------------------------

    def fail(self, tag: str, message: str) -> None:
        self.report.errors.append(f"[{tag}] {message}")

    async def one(self, kind: str, rng: random.Random, tag: str) -> None:
        try:
            if kind == "disconnect":
                await self.disconnect(rng, tag)
            elif kind == "over_limit":
                await self.over_limit(rng, tag)
            else:
                await self.twins(kind, rng, tag)
        except Exception as exc:  # transport errors count as failures, not crashes
            self.fail(tag, f"{kind}: {type(exc).__name__}: {exc}")

    async def worker(self, index: int, deadline: float) -> None:
        rng = random.Random(index)
        kinds, weights = list(MIX), list(MIX.values())
        i = 0
        # Everyone's first request is a valid stream, so all workers stream at once.
        kind = "text"
        while True:
            await self.one(kind, rng, f"w{index}#{i}")
            i += 1
            if time.monotonic() >= deadline:
                return
            kind = rng.choices(kinds, weights)[0]

    async def run(self, seconds: float, concurrency: int) -> Report:
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(self.worker(i, deadline) for i in range(concurrency)))
        return self.report

    async def warm_up(self) -> None:
        rng = random.Random(-1)
        kinds = ["text", "image", "tool", "tool_free", "disconnect", "over_limit"]
        await asyncio.gather(*(self.one(k, rng, f"warm-{k}") for k in kinds * 2))

    async def abort_burst(self, count: int) -> None:
        """Many requests abandoned at once, streamed and not."""
        rng = random.Random(7)
        await asyncio.gather(*(self.disconnect(rng, f"burst{i}") for i in range(count)))


async def sse_events(resp: httpx.Response) -> Any:
    async for line in resp.aiter_lines():
        if not line.startswith("data: "):
            continue
        payload = line[len("data: ") :]
        yield payload if payload == "[DONE]" else orjson.loads(payload)


def rss_mib(server: Server) -> float:
    proc = psutil.Process(server.proc.pid)
    procs = [proc, *proc.children(recursive=True)]
    return sum(p.memory_info().rss for p in procs) / 2**20


async def running_requests(client: httpx.AsyncClient) -> int:
    return int((await client.get("/server_info")).json()["num_running_requests"])


async def wait_idle(client: httpx.AsyncClient, timeout: float) -> int:
    """``num_running_requests`` once it reaches 0, or its last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        running = await running_requests(client)
        if running == 0 or time.monotonic() > deadline:
            return running
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def soak_server(server_factory) -> Server:  # type: ignore[no-untyped-def]
    # Room for the whole soak at once, so admission queueing is not what is measured.
    return server_factory(
        "--enable-custom-logit-processor",
        "--no-warmup",
        env={
            "OMNI_SGLANG_CPU_MAX_RUNNING_REQUESTS": str(max(64, 2 * CONCURRENCY)),
            # Twins double the requests in flight; the admission bound must not refuse them.
            "OMNI_SGLANG_MAX_CONCURRENT_REQUESTS": str(max(256, 2 * CONCURRENCY + 64)),
        },
    )


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path: Any) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_path))


async def run_soak(
    server: Server, force: str, tokenizer: Any, seconds: float, concurrency: int
) -> dict[str, Any]:
    """The whole scenario; returns figures, and leaves asserting to the caller."""
    soak = Soak(server.url, force, tokenizer)
    try:
        await soak.warm_up()
        await wait_idle(soak.client, 30)
        rss_before = rss_mib(server)
        started = time.monotonic()
        report = await soak.run(seconds, concurrency)
        elapsed = time.monotonic() - started
        running_after_soak = await wait_idle(soak.client, 15)
        await soak.abort_burst(32)
        running_after_burst = await wait_idle(soak.client, 10)
        rss_after = rss_mib(server)
        health = (await soak.client.get("/v1/health/ready")).status_code
    finally:
        await soak.client.aclose()
    return {
        "seconds": round(elapsed, 1),
        "concurrency": concurrency,
        "counts": dict(report.counts),
        "errors": report.errors,
        "peak_streams": report.peak_streams,
        "running_after_soak": running_after_soak,
        "running_after_abort_burst": running_after_burst,
        "rss_before_mib": round(rss_before, 1),
        "rss_after_mib": round(rss_after, 1),
        "health_after": health,
    }


async def test_soak(soak_server: Server, force_tokens_processor: str, tokenizer: Any) -> None:
    got = await run_soak(soak_server, force_tokens_processor, tokenizer, SECONDS, CONCURRENCY)
    print(orjson.dumps({k: v for k, v in got.items() if k != "errors"}).decode())
    if REPORT:  # bench/soak_long.py keeps the figures
        Path(REPORT).write_bytes(orjson.dumps({**got, "errors": got["errors"][:50]}))
    assert got["errors"] == [], "\n".join(got["errors"][:20])
    # Every sort of request was exercised, and at least CONCURRENCY streams were open at once.
    assert set(got["counts"]) == set(MIX), got["counts"]
    assert got["peak_streams"] >= CONCURRENCY
    # Aborted requests (hang-ups during the soak, then a burst of 32) left the engine.
    assert got["running_after_soak"] == 0
    assert got["running_after_abort_burst"] == 0
    assert got["rss_after_mib"] - got["rss_before_mib"] < RSS_MARGIN_MIB, got
    assert got["health_after"] == 200
