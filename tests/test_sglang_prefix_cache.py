"""RadixAttention on SGLang's own runtime, on this CPU: a repeated long prefix is served
from the cache, and ``/flush_cache`` really empties it.

On the tiny Llama-class model (attention only); the hybrid model's cache, with its Mamba
states, is ``test_sglang_hybrid_cache.py``'s. The cpu engine has no prefix cache at all, so
this module is SGLang's alone."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Server

pytestmark = pytest.mark.sglang

#: About 600 tokens of shared system prompt (the radix tree matches whole tokens).
LONG_SYSTEM = "You are a careful assistant who answers in one short line. " * 50


@pytest.fixture(scope="module")
def llama(sglang_llama_server: Server) -> Server:
    return sglang_llama_server


def ask(server: Server, question: str) -> dict[str, Any]:
    body = {
        "model": "tiny-llama",
        "messages": [
            {"role": "system", "content": LONG_SYSTEM},
            {"role": "user", "content": question},
        ],
        "max_tokens": 2,
    }
    resp = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()["usage"]  # type: ignore[no-any-return]


def test_a_repeated_prefix_is_served_from_the_radix_cache(llama: Server) -> None:
    first = ask(llama, "What is the first question?")
    second = ask(llama, "And what is the second one?")
    assert first["prompt_tokens"] > 500
    # Everything up to the user's question is shared: the system turn at least.
    shared = second["prompt_tokens_details"]["cached_tokens"]
    assert shared >= 500, second
    assert shared < second["prompt_tokens"]  # the new question itself was computed


def test_flush_cache_empties_it(llama: Server) -> None:
    ask(llama, "Warm the cache up.")
    flushed = httpx.post(llama.url + "/flush_cache", timeout=30)
    assert flushed.status_code == 200, flushed.text
    after = ask(llama, "Warm the cache up.")
    assert after["prompt_tokens_details"]["cached_tokens"] == 0
    again = ask(llama, "Warm the cache up.")
    assert again["prompt_tokens_details"]["cached_tokens"] > 500


def test_extra_key_reaches_sglang_and_separates_cache_entries(llama: Server) -> None:
    """``/generate``'s ``extra_key`` goes to SGLang unchanged: SGLang salts the radix key
    with it, so the same prompt under another key shares nothing, under the same key all
    but the last token."""

    def cached(key: str) -> int:
        body = {
            "text": LONG_SYSTEM + "Which key?",
            "sampling_params": {"max_new_tokens": 1},
            "extra_key": key,
        }
        resp = httpx.post(llama.url + "/generate", json=body, timeout=60)
        assert resp.status_code == 200, resp.text
        return int(resp.json()["meta_info"]["cached_tokens"])

    cached("tenant-a")
    assert cached("tenant-b") == 0
    assert cached("tenant-a") > 500
