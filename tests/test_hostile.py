"""Hostile payloads: every one gets a 4xx OpenAI error envelope, never a 500 or a crash,
and the server keeps serving. Broken JSON and encodings, wrong types in every field,
enormous numbers and collections, media that lies about what it is or how big it is.
Both engines: on SGLang (``tiny-omni``, its own Nemotron Omni processor and model code)
every refusal must stay ours, before SGLang sees the request.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from tests.conftest import Server, engine_args
from tests.hostile_corpus import (
    CHAT_CASES,
    ERROR_KEYS,
    OTHER_CASES,
    Case,
    MiB,
    chat,
)


@pytest.fixture(scope="module")
def server(module_server_factory, media_engine: str) -> Server:  # type: ignore[no-untyped-def]
    return module_server_factory(*engine_args(media_engine, "--no-warmup"))  # type: ignore[no-any-return]


def post(server: Server, path: str, payload: Any, timeout: float = 120) -> httpx.Response:
    if isinstance(payload, bytes | Iterator):
        return httpx.post(
            server.url + path,
            content=payload,
            headers={"content-type": "application/json"},
            timeout=timeout,
        )
    return httpx.post(server.url + path, json=payload, timeout=timeout)


def assert_envelope(resp: httpx.Response, status: int | None, fragment: str = "") -> None:
    """A 4xx (``status`` exactly, if given) with OpenAI's error envelope."""
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:500])
    assert status is None or resp.status_code == status, (resp.status_code, resp.text[:500])
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    error = resp.json()["error"]
    assert set(error) == ERROR_KEYS, error
    assert isinstance(error["message"], str) and error["message"]
    said = (error["message"] + " " + str(error["param"])).lower()
    assert fragment.lower() in said, (fragment, error)


@pytest.mark.parametrize("case", CHAT_CASES + OTHER_CASES, ids=lambda c: c.name)
def test_hostile_payload(server: Server, case: Case) -> None:
    payload = case.payload()
    assert_envelope(post(server, case.path, payload), case.status, case.fragment)
    if isinstance(payload, dict) and case.path != "/generate":
        # Streamed, the refusal must still come before the 200 of the event stream.
        resp = post(server, case.path, {**payload, "stream": True})
        assert_envelope(resp, case.status, case.fragment)


# -- wrong types in every top-level field -------------------------------------------------------

#: One value of each JSON type, chosen so no lax parser could read it as another type.
CLEARLY_WRONG: dict[str, Any] = {
    "object": {"hostile": [1]},
    "array": [[{"x": None}]],
    "string": "not-a-number-or-bool",
    "number": 0.5,
    "boolean": True,
}
#: Values a lax parser converts (pydantic's default mode does): JSON types are still wrong.
CONVERTIBLE: dict[str, Any] = {"boolean": True, "numeric string": "1", "one": 1}


@pytest.fixture(scope="module")
def chat_schema(server: Server) -> tuple[dict[str, Any], dict[str, Any]]:
    document = httpx.get(server.url + "/openapi.json", timeout=30).json()
    return document["components"]["schemas"]["ChatCompletionRequest"], document


def field_accepts(document: dict[str, Any], field_schema: dict[str, Any], value: Any) -> bool:
    """Whether the documented schema of a field accepts ``value`` (refs resolved)."""
    schema = {**field_schema, "components": document["components"]}
    return jsonschema.Draft202012Validator(schema).is_valid(value)


def test_wrong_type_in_every_field(
    server: Server, chat_schema: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    schema, document = chat_schema
    tried, failures = 0, []
    for name, field_schema in schema["properties"].items():
        for label, value in CLEARLY_WRONG.items():
            # Only values the field's documented type refuses (an integer 0.5 is wrong, a
            # number 0.5 is not); booleans are left to the next test.
            if label == "boolean" or field_accepts(document, field_schema, value):
                continue
            tried += 1
            resp = post(server, "/v1/chat/completions", {**chat(), name: value}, timeout=60)
            try:
                assert_envelope(resp, 400, name)
            except AssertionError as exc:
                failures.append(f"{name}={value!r}: {exc}")
    assert tried >= 2 * len(schema["properties"])
    assert not failures, "\n".join(failures)


def test_lax_conversions_are_refused(
    server: Server, chat_schema: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    """README: wrong types are a 400. ``"max_tokens": true`` or ``"temperature": "1"`` are
    wrong JSON types that pydantic's lax mode converts and serves (OpenAI refuses them)."""
    schema, document = chat_schema
    accepted = []
    for name, field_schema in schema["properties"].items():
        for label, value in CONVERTIBLE.items():
            if field_accepts(document, field_schema, value):
                continue
            resp = post(server, "/v1/chat/completions", {**chat(), name: value}, timeout=60)
            if resp.status_code == 200:
                accepted.append(f"{name}={value!r} ({label})")
            else:
                assert_envelope(resp, None)
    assert not accepted, "served with a wrong JSON type: " + ", ".join(accepted)


# -- body size ------------------------------------------------------------------------------


def test_body_over_the_limit_is_413(server: Server) -> None:
    big = json.dumps(chat(messages=[{"role": "user", "content": "x" * (65 * MiB)}])).encode()
    assert_envelope(post(server, "/v1/chat/completions", big), 413, "limit")

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit must count bytes read
        yield b'{"model": "x", "messages": [{"role": "user", "content": "'
        for _ in range(70):
            yield b"x" * MiB
        yield b'"}]}'

    assert_envelope(post(server, "/v1/chat/completions", chunked()), 413, "limit")


def test_huge_string_within_the_limit_keeps_the_server_responsive(server: Server) -> None:
    """A 12 MiB prompt is refused (context), and meanwhile the server still answers its
    liveness probe. Rendering and tokenizing it takes seconds (~7 s here; a 60 MiB one
    took ~90 s), which ran on the event loop: nothing else was answered meanwhile."""
    body = json.dumps(chat(messages=[{"role": "user", "content": "Paris " * (2 * MiB)}]))
    result: dict[str, httpx.Response] = {}
    worker = threading.Thread(
        target=lambda: result.update(resp=post(server, "/v1/chat/completions", body.encode()))
    )
    worker.start()
    time.sleep(0.5)  # the body is uploaded and being worked on
    slowest = 0.0
    while worker.is_alive():
        started = time.monotonic()
        with contextlib.suppress(httpx.TimeoutException):
            httpx.get(server.url + "/v1/health/live", timeout=10)
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.25)
    worker.join()
    assert_envelope(result["resp"], 400, "context")
    assert result["resp"].json()["error"]["code"] == "context_length_exceeded"
    assert slowest < 2.0, f"/v1/health/live took {slowest:.1f} s while the prompt was handled"


def test_huge_prompts_do_not_starve_other_requests(server: Server) -> None:
    """Eight 6 MiB prompts at once (each hopelessly over the context) must not hold up a
    small request. Rendering/tokenizing runs in the default thread pool (6 threads on
    2 cores), so eight such bodies occupied it and "Hi" waited for them (99 s with eight
    24 MiB prompts). A prompt longer in characters than the context could ever hold in
    tokens can be refused before tokenizing it."""
    body = json.dumps(chat(messages=[{"role": "user", "content": "Paris " * MiB}])).encode()
    statuses: list[int] = []
    senders = [
        threading.Thread(
            target=lambda: statuses.append(post(server, "/v1/chat/completions", body).status_code)
        )
        for _ in range(8)
    ]
    for sender in senders:
        sender.start()
    time.sleep(1.0)  # the bodies are uploaded and queued for tokenizing
    started = time.monotonic()
    small = post(server, "/v1/chat/completions", chat())
    waited = time.monotonic() - started
    for sender in senders:
        sender.join()
    assert small.status_code == 200, small.text
    assert statuses == [400] * 8
    assert waited < 5.0, f"a 2-token request took {waited:.1f} s behind the huge prompts"


def test_server_still_healthy(server: Server) -> None:
    assert server.proc.poll() is None, server.log()
    deadline = time.monotonic() + 120
    while httpx.get(server.url + "/v1/health/ready", timeout=120).status_code != 200:
        assert time.monotonic() < deadline, "not ready again after the hostile payloads"
        time.sleep(1)
    ok = post(server, "/v1/chat/completions", chat(max_tokens=4, ignore_eos=True))
    assert ok.status_code == 200, ok.text
    assert ok.json()["usage"]["completion_tokens"] == 4
    assert httpx.get(server.url + "/server_info").json()["num_running_requests"] == 0
