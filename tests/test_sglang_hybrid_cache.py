"""Prefix caching for the hybrid (Mamba + attention) model on SGLang's own runtime.

A hybrid model's prefix hit needs the Mamba state where the prefix ends, not only the
attention KV: SGLang's ``extra_buffer`` strategy snapshots it on a grid as prefill and
decode go (torch-native on this CPU: ``omni_sglang_cpu.mamba_track``), and our Nemotron
plugin enters Nano Omni's architecture in SGLang's registry of hybrid models (SGLang
0.5.23 lists its sibling only). Every hit here must give exactly the greedy answer of an
uncached run: after ``/flush_cache`` on the same server, or on a server with
``--disable-radix-cache``.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from typing import Any

import httpx
import pytest

from omni_sglang.media import synth
from tests.conftest import TINY, Server, engine_args

pytestmark = pytest.mark.sglang

#: About 2,100 tokens of shared system prompt.
LONG_SYSTEM = "You are a careful assistant: answer in one short line, and never guess. " * 60
IMAGE = synth.image_bytes("PNG", (200, 120))
VIDEO = synth.video_bytes(3.0, (160, 120), 10)
#: SGLang keeps Mamba states on a grid of prefill positions (the larger of its FLA chunk,
#: 64, and the model's Mamba chunk, 32): a hit ends at most this far before the match.
GRID = 64
#: Long enough that turn two's shared prefix runs a grid step past the image.
IMAGE_QUESTION = "What is in this image? Name every object, its colour and its place. " * 3


def uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def chat(server: Server, messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    body = {
        "model": TINY,
        "messages": messages,
        "max_tokens": 8,
        "temperature": 0,
        "ignore_eos": True,
        **fields,
    }
    resp = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=300)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def cached(answer: dict[str, Any]) -> int:
    return int(answer["usage"]["prompt_tokens_details"]["cached_tokens"])


def said(answer: dict[str, Any]) -> tuple[str, str]:
    message = answer["choices"][0]["message"]
    return message.get("reasoning") or "", message.get("content") or ""


def flush(server: Server) -> None:
    assert httpx.post(server.url + "/flush_cache", timeout=60).status_code == 200


def uncached(server: Server, messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    flush(server)
    answer = chat(server, messages, **fields)
    assert cached(answer) == 0, answer["usage"]
    return answer


def system(question: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": question}]


def test_a_repeated_prompt_is_served_from_the_cache_with_the_same_answer(
    sglang_server: Server,
) -> None:
    first = uncached(sglang_server, system("What is the first question?"))
    again = chat(sglang_server, system("What is the first question?"))
    prompt = again["usage"]["prompt_tokens"]
    assert prompt > 1000
    assert prompt - GRID <= cached(again) < prompt, again["usage"]
    assert said(again) == said(first)


def test_a_shared_system_prompt_is_served_from_the_cache(sglang_server: Server) -> None:
    reference = uncached(sglang_server, system("And what is the second one?"))
    chat(sglang_server, system("A question that warms the cache up."))
    hit = chat(sglang_server, system("And what is the second one?"))
    assert cached(hit) >= 1000, hit["usage"]
    assert said(hit) == said(reference)


def image_turns(answer: str | None = None) -> list[dict[str, Any]]:
    """The seed's multi-turn example: an image and a question, the model's answer, a
    follow-up question."""
    turns: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": uri(IMAGE, "image/png")}},
                {"type": "text", "text": IMAGE_QUESTION},
            ],
        }
    ]
    if answer is not None:
        turns += [
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "And what colour is it?"},
        ]
    return turns


def media_span(
    server: Server, tok: Any, messages: list[dict[str, Any]], **fields: Any
) -> tuple[int, int]:
    """Where the media tokens start and end in the prompt the request prefills."""
    body = {"model": TINY, "messages": messages, **fields}
    resp = httpx.post(server.url + "/v1/chat/completions/render", json=body, timeout=60)
    assert resp.status_code == 200, resp.text
    prompt = resp.json()["prompt_token_ids"]
    at = [i for i, t in enumerate(prompt) if t == tok.convert_tokens_to_ids("<image>")]
    return at[0], at[-1] + 1


def test_turn_two_reuses_turn_ones_image(sglang_server: Server, tok: Any) -> None:
    kw: dict[str, Any] = {"chat_template_kwargs": {"enable_thinking": False}}
    flush(sglang_server)
    follow_up = image_turns(said(chat(sglang_server, image_turns(), **kw))[1])
    turn_two = chat(sglang_server, follow_up, **kw)
    _, image_end = media_span(sglang_server, tok, follow_up)
    assert cached(turn_two) >= image_end, (turn_two["usage"], image_end)
    assert said(turn_two) == said(uncached(sglang_server, follow_up, **kw))


#: The video first: the text before it is shorter than a grid step, so a request whose
#: video tokens all differ can share nothing cacheable.
VIDEO_FIRST = [
    {
        "role": "user",
        "content": [
            {"type": "video_url", "video_url": {"url": uri(VIDEO, "video/mp4")}},
            {"type": "text", "text": "Describe."},
        ],
    }
]


@pytest.mark.parametrize(
    "other",
    [
        {"mm_processor_kwargs": {"video_pruning_rate": 0.25}},
        {"media_io_kwargs": {"video": {"num_frames": 3, "fps": -1}}},
    ],
    ids=["evs_rate", "frames"],
)
def test_other_video_options_never_hit_the_same_entry(
    sglang_server: Server, other: dict[str, Any]
) -> None:
    """The same video bytes under another EVS rate or frame sampling are other tokens
    (SGLang's item hash is salted with the options): nothing of the video is shared."""
    flush(sglang_server)
    first = chat(sglang_server, VIDEO_FIRST)
    again = chat(sglang_server, VIDEO_FIRST)
    prompt = first["usage"]["prompt_tokens"]
    assert prompt > 2 * GRID  # mostly the video's tokens
    assert cached(again) >= prompt - GRID, again["usage"]
    changed = chat(sglang_server, VIDEO_FIRST, **other)
    assert changed["usage"]["prompt_tokens"] != prompt  # the options did change the tokens
    assert cached(changed) < GRID, changed["usage"]
    assert said(changed) == said(uncached(sglang_server, VIDEO_FIRST, **other))


def test_metrics_count_cached_tokens(sglang_server: Server) -> None:
    def read() -> dict[str, float]:
        text = httpx.get(sglang_server.url + "/metrics", timeout=30).text
        names = ("omni_sglang_cached_prompt_tokens_total", "omni_sglang_prefix_cache_hit_ratio")
        found = {n: re.search(rf"^{n} (\S+)$", text, re.MULTILINE) for n in names}
        return {n: float(m.group(1)) for n, m in found.items() if m}

    before = read()
    chat(sglang_server, system("Counted twice?"))
    hit = chat(sglang_server, system("Counted twice?"))
    after = read()
    total = "omni_sglang_cached_prompt_tokens_total"
    assert after[total] - before.get(total, 0) >= cached(hit) > 0
    assert 0 < after["omni_sglang_prefix_cache_hit_ratio"] <= 1


# -- many conversations at once, under a cache budget that forces evictions ----------

CONVERSATIONS = 64
TURNS = 3
#: Six distinct system prompts of ~1,200 tokens, so conversations share prefixes (with
#: the turns ~16k distinct tokens, against a KV pool of 8,192: evictions are forced).
SYSTEMS = [f"Assistant number {i}: answer in one line, never guess. " * 40 for i in range(6)]
QUESTIONS = ("Where do we start?", "Why is that?", "What follows from it?")


@pytest.fixture(scope="module")
def small_cache(module_server_factory) -> Server:  # type: ignore[no-untyped-def]
    """KV room for about six of the conversations' prompts, Mamba state slots for 40
    requests (SGLang's flags last: they override the test default's larger pool). A leak
    SGLang's idle check finds stops the scheduler (strict mode) instead of a warning."""
    return module_server_factory(  # type: ignore[no-any-return]
        *engine_args("sglang", "--no-warmup"),
        "--max-total-tokens",
        "8192",
        "--max-mamba-cache-size",
        "160",
        env={"SGLANG_ENABLE_STRICT_MEM_CHECK_DURING_IDLE": "1"},
    )


@pytest.fixture(scope="module")
def reference(module_server_factory) -> list[list[tuple[str, str]]]:  # type: ignore[no-untyped-def]
    """Every conversation's answers from a server without a prefix cache."""
    server = module_server_factory(*engine_args("sglang", "--no-warmup"), "--disable-radix-cache")
    answers = asyncio.run(converse_all(server, CONVERSATIONS))
    server.stop()
    return answers


async def converse(client: httpx.AsyncClient, server: Server, n: int) -> list[tuple[str, str]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEMS[n % len(SYSTEMS)]}]
    answers = []
    for turn in range(TURNS):
        messages.append({"role": "user", "content": f"{QUESTIONS[turn]} (conversation {n})"})
        body = {
            "model": TINY,
            "messages": messages,
            "max_tokens": 6,
            "temperature": 0,
            "ignore_eos": True,
            "chat_template_kwargs": {"enable_thinking": False},
        }
        resp = await client.post(server.url + "/v1/chat/completions", json=body)
        assert resp.status_code == 200, resp.text
        message = resp.json()["choices"][0]["message"]
        answers.append((message.get("reasoning") or "", message.get("content") or ""))
        messages.append({"role": "assistant", "content": answers[-1][1]})
    return answers


async def converse_all(server: Server, count: int) -> list[list[tuple[str, str]]]:
    async with httpx.AsyncClient(timeout=600) as client:
        return list(await asyncio.gather(*(converse(client, server, n) for n in range(count))))


def hit_ratio(server: Server) -> float:
    text = httpx.get(server.url + "/metrics", timeout=30).text
    found = re.search(r"^omni_sglang_prefix_cache_hit_ratio (\S+)$", text, re.MULTILINE)
    assert found, "the hit ratio is missing from /metrics"
    return float(found.group(1))


def assert_no_leak(server: Server) -> None:
    """SGLang checks its pools and radix tree whenever the scheduler idles; in strict
    mode a leak is an error that stops it (the server then is not healthy)."""
    time.sleep(1.0)  # a few idle rounds
    assert httpx.get(server.url + "/health", timeout=30).status_code == 200, server.log()
    assert "memory leak detected" not in server.log_path.read_text(errors="replace")


def test_concurrent_conversations_under_evictions_match_uncached_runs(
    small_cache: Server, reference: list[list[tuple[str, str]]]
) -> None:
    assert asyncio.run(converse_all(small_cache, CONVERSATIONS)) == reference
    assert hit_ratio(small_cache) > 0.2  # the shared prefixes were reused
    assert_no_leak(small_cache)


def test_flush_while_requests_run_is_safe(
    small_cache: Server, reference: list[list[tuple[str, str]]]
) -> None:
    async def scenario() -> tuple[list[list[tuple[str, str]]], list[int]]:
        async with httpx.AsyncClient(timeout=600) as client:
            running = asyncio.gather(*(converse(client, small_cache, n) for n in range(16)))
            statuses = []
            for _ in range(6):
                await asyncio.sleep(0.25)
                statuses.append((await client.post(small_cache.url + "/flush_cache")).status_code)
            return list(await running), statuses

    answers, statuses = asyncio.run(scenario())
    assert answers == reference[:16]
    # SGLang flushes only an idle cache: while requests run it refuses (400), and no
    # request is hurt either way.
    assert set(statuses) <= {200, 400}, statuses
    flush(small_cache)
    assert_no_leak(small_cache)
