"""``/tokenize``, ``/detokenize`` and ``/v1/chat/completions/render`` (issue 15, part 4), on
both engines: the ids are the tokenizer's, a chat request's are exactly what its chat
completion prefills (its ``usage.prompt_tokens``, media placeholders expanded; on SGLang
counted by SGLang's own processor), and bad requests are 400s that say why."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from omni_sglang.media import synth
from tests.conftest import TINY, Server

NO_THINK = {"enable_thinking": False}
IMAGE = "data:image/png;base64," + base64.b64encode(synth.image_bytes("PNG", (64, 48))).decode()
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is the capital of France?"},
]
WITH_IMAGE: list[dict[str, Any]] = [
    {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": IMAGE}},
            {"type": "text", "text": "What is in this picture?"},
        ],
    }
]


def post(server: Server, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=120)


def test_tokenize_a_prompt_as_the_tokenizer_does(engine_server: Server, tok: Any) -> None:
    text = "The capital of France is Paris."
    for path in ("/tokenize", "/v1/tokenize"):
        body = post(engine_server, path, {"model": TINY, "prompt": text}).json()
        assert body["tokens"] == tok(text).input_ids
        assert body["count"] == len(body["tokens"])
        assert body["max_model_len"] > body["count"]
        assert "token_strs" not in body
    plain = post(
        engine_server,
        "/tokenize",
        {"prompt": [text, "Hi"], "add_special_tokens": False, "return_token_strs": True},
    ).json()
    assert plain["tokens"] == [tok(t, add_special_tokens=False).input_ids for t in (text, "Hi")]
    assert plain["count"] == [len(t) for t in plain["tokens"]]
    assert plain["token_strs"][1] == tok.convert_ids_to_tokens(plain["tokens"][1])


def test_detokenize_round_trip(engine_server: Server, tok: Any) -> None:
    text = "Grüße aus Paris! 1+1=2"
    ids = tok(text, add_special_tokens=False).input_ids
    for path in ("/detokenize", "/v1/detokenize"):
        assert post(engine_server, path, {"tokens": ids}).json() == {"text": text}
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    both = post(engine_server, "/detokenize", {"tokens": [ids, [*ids, im_end]]}).json()
    assert both == {"text": [text, text]}  # special tokens skipped by default
    kept = post(
        engine_server, "/detokenize", {"tokens": [*ids, im_end], "skip_special_tokens": False}
    ).json()
    assert kept == {"text": text + "<|im_end|>"}


def prefilled(server: Server, messages: list[dict[str, Any]]) -> int:
    """The prompt tokens a chat completion of ``messages`` reports."""
    body = {
        "model": TINY,
        "messages": messages,
        "max_tokens": 1,
        "chat_template_kwargs": NO_THINK,
    }
    response = post(server, "/v1/chat/completions", body)
    assert response.status_code == 200, response.text
    return int(response.json()["usage"]["prompt_tokens"])


@pytest.mark.parametrize("messages", [MESSAGES, WITH_IMAGE], ids=["text", "image"])
def test_render_is_what_the_chat_completion_prefills(
    engine_server: Server, tok: Any, messages: list[dict[str, Any]]
) -> None:
    body = {"model": TINY, "messages": messages, "chat_template_kwargs": NO_THINK}
    rendered = post(engine_server, "/v1/chat/completions/render", body).json()
    assert (
        rendered["count"] == len(rendered["prompt_token_ids"]) == prefilled(engine_server, messages)
    )
    assert rendered["media_items"] == (messages is WITH_IMAGE)
    tokenized = post(engine_server, "/tokenize", body).json()
    assert tokenized["tokens"] == rendered["prompt_token_ids"]
    if messages is MESSAGES:  # no media: the template's text, tokenized as it is
        expected = tok.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, **NO_THINK
        )
        assert rendered["prompt"] == expected
        assert rendered["prompt_token_ids"] == tok(expected, add_special_tokens=False).input_ids
    else:  # the image's placeholder expanded into many tokens
        assert rendered["count"] > len(tok(rendered["prompt"], add_special_tokens=False).input_ids)


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("/tokenize", {"prompt": "a", "messages": MESSAGES}, "exactly one of"),
        ("/tokenize", {}, "exactly one of"),
        ("/tokenize", {"prompt": "a", "tools": []}, "only go with 'messages'"),
        ("/tokenize", {"messages": MESSAGES, "add_special_tokens": False}, "goes with 'prompt'"),
        ("/tokenize", {"prompt": "a", "model": "gpt-4"}, "does not exist"),
        ("/tokenize", {"prompt": "a", "temperature": 1}, "temperature"),
        ("/tokenize", {"prompt": [], "model": TINY}, "1 to 64"),
        ("/detokenize", {"tokens": [1, 10**9]}, "outside this vocabulary"),
        ("/detokenize", {"tokens": []}, "tokens"),
        ("/detokenize", {"tokens": "abc"}, "tokens"),
        ("/v1/chat/completions/render", {"model": TINY, "messages": []}, "messages"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    engine_server: Server, path: str, body: dict[str, Any], says: str
) -> None:
    response = post(engine_server, path, body)
    assert response.status_code in (400, 404), response.text
    assert says in response.json()["error"]["message"], response.text
