"""Chat and text completions over HTTP on the CPU engine, with the OpenAI SDK as client."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.conftest import TINY, Server

SEED_MODEL = "nvidia/nemotron-3-nano-omni-30b-a3b-reasoning"
SEED_TEXT_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant"},
    {
        "role": "user",
        "content": "Create a detailed itinerary for a week-long adventure trip through "
        "Southeast Asia.",
    },
]


@pytest.fixture(scope="module")
def client(engine_server: Server) -> OpenAI:
    return OpenAI(base_url=engine_server.url + "/v1", api_key="not-used", max_retries=0)


def forced(processor: str, tokenizer_ids: list[int], eos: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"force": tokenizer_ids}
    if eos is not None:
        params["eos"] = eos
    return {"custom_logit_processor": processor, "custom_params": params}


def test_seed_text_only_request(client: OpenAI) -> None:
    resp = client.chat.completions.create(
        model=SEED_MODEL,
        messages=SEED_TEXT_MESSAGES,
        max_tokens=4096,
        stream=False,  # type: ignore[arg-type]
    )
    choice = resp.choices[0]
    assert resp.model == SEED_MODEL and resp.object == "chat.completion"
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert resp.usage is not None and resp.usage.prompt_tokens > 20
    assert 0 < resp.usage.completion_tokens <= 4096
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_seed_streaming_request(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model=SEED_MODEL,
        messages=SEED_TEXT_MESSAGES,  # type: ignore[arg-type]
        max_tokens=64,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and all(f is None for f in finishes[:-1])
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert usage.completion_tokens <= 64


def test_forced_output_same_streamed_and_whole(
    client: OpenAI, force_tokens_processor: str, tok: Any
) -> None:
    text = "The capital of France is Paris."
    extra = forced(
        force_tokens_processor,
        tok(text, add_special_tokens=False).input_ids,
        eos=tok.convert_tokens_to_ids("<|im_end|>"),
    )
    extra["chat_template_kwargs"] = {"enable_thinking": False}  # all of it is the answer
    msgs = [{"role": "user", "content": "Capital of France?"}]
    whole = client.chat.completions.create(model=TINY, messages=msgs, extra_body=extra)  # type: ignore[arg-type]
    assert whole.choices[0].message.content == text
    assert whole.choices[0].finish_reason == "stop"
    stream = client.chat.completions.create(
        model=TINY,
        messages=msgs,
        extra_body=extra,
        stream=True,  # type: ignore[arg-type]
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces) == text
    assert len([p for p in pieces if p]) > 3  # really streamed, token by token


def test_stop_sequence_through_http(client: OpenAI) -> None:
    kwargs: dict[str, Any] = dict(
        model=TINY,
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=30,
        temperature=0,
        extra_body={"ignore_eos": True, "chat_template_kwargs": {"enable_thinking": False}},
    )
    a = client.chat.completions.create(**kwargs).choices[0].message.content
    assert a
    stop = a[5:8]
    c = client.chat.completions.create(**kwargs, stop=[stop]).choices[0]
    assert c.message.content == a[: a.find(stop)] and c.finish_reason == "stop"


def test_multi_turn_and_n(client: OpenAI) -> None:
    msgs = [
        {"role": "system", "content": "You are a helpful assistant"},
        {"role": "user", "content": "What is in this image?"},
        {"role": "assistant", "content": "A boardwalk in a field of tall grass."},
        {"role": "user", "content": "What would be the best season to visit this place?"},
    ]
    resp = client.chat.completions.create(
        model=TINY,
        messages=msgs,
        max_tokens=8,
        n=3,
        temperature=1.0,  # type: ignore[arg-type]
    )
    assert [c.index for c in resp.choices] == [0, 1, 2]
    assert resp.usage is not None and resp.usage.completion_tokens <= 24


def test_text_completions(client: OpenAI) -> None:
    resp = client.completions.create(
        model=TINY,
        prompt=["Hello", "The weather"],
        max_tokens=4,
        n=2,
        echo=True,
        temperature=0,
        extra_body={"ignore_eos": True},
    )
    assert [c.index for c in resp.choices] == [0, 1, 2, 3]
    assert resp.choices[0].text.startswith("Hello") and resp.choices[2].text.startswith(
        "The weather"
    )
    assert resp.choices[0].text == resp.choices[1].text  # greedy: both samples agree
    streamed = client.completions.create(
        model=TINY,
        prompt="Hello",
        max_tokens=4,
        temperature=0,
        stream=True,
        extra_body={"ignore_eos": True},
    )
    assert "Hello" + "".join(c.choices[0].text for c in streamed if c.choices) == (
        resp.choices[0].text
    )


def test_models_health_version_metadata(engine_server: Server) -> None:
    models = httpx.get(engine_server.url + "/v1/models").json()
    ids = [m["id"] for m in models["data"]]
    assert ids == [TINY, SEED_MODEL]
    assert all(m["max_model_len"] == 16384 and m["object"] == "model" for m in models["data"])
    ready = httpx.get(engine_server.url + "/v1/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"object": "health.response", "message": "Service is ready."}
    assert httpx.get(engine_server.url + "/v1/health/live").status_code == 200
    assert httpx.get(engine_server.url + "/v1/version").json()["release"]
    meta = httpx.get(engine_server.url + "/v1/metadata").json()
    assert [m["shortName"] for m in meta["modelInfo"]] == ids


def _running(server: Server) -> int:
    return int(httpx.get(server.url + "/server_info").json()["num_running_requests"])


def test_client_disconnect_aborts_stream(engine_server: Server) -> None:
    body = {
        "model": TINY,
        "messages": [{"role": "user", "content": "Go on"}],
        "max_tokens": 5000,
        "ignore_eos": True,
        "stream": True,
    }
    with (
        httpx.Client(timeout=30) as http,
        http.stream("POST", engine_server.url + "/v1/chat/completions", json=body) as resp,
    ):
        lines = resp.iter_lines()
        for _ in range(6):
            next(lines)
        assert _running(engine_server) == 1
    deadline = time.monotonic() + 10
    while _running(engine_server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _running(engine_server) == 0


def test_client_disconnect_aborts_non_streaming(engine_server: Server) -> None:
    body = {
        "model": TINY,
        "messages": [{"role": "user", "content": "Go on"}],
        "max_tokens": 5000,
        "ignore_eos": True,
    }
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(engine_server.url + "/v1/chat/completions", json=body, timeout=1.5)
    deadline = time.monotonic() + 10
    while _running(engine_server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _running(engine_server) == 0
