"""The request's sampling fields always take effect (both engines, over HTTP).

The model card's recommended sampling (thinking on: temperature 0.6, top_p 0.95; off:
temperature 0.2, top_k 1, i.e. greedy) applies only to a request that sets none of
``temperature``, ``top_p``, ``top_k``, ``min_p``; a request that sets one gets the
engine's neutral values for the others. ``X-Sampling-Defaults`` says which applied.
A seed makes sampling reproducible on the cpu engine; SGLang applies it only in its
deterministic mode (GPU attention backends), and a ``Warning`` header says so.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import TINY, Server

MODES = {"thinking": True, "no_thinking": False}
#: Each distribution field alone, at a value that leaves plenty to sample from.
ALONE = [{"temperature": 1.0}, {"top_p": 0.9}, {"top_k": 50}, {"min_p": 0.01}]


def ask(server: Server, thinking: bool, seed: int | None = None, **fields: Any) -> httpx.Response:
    body: dict[str, Any] = {
        "model": TINY,
        "messages": [{"role": "user", "content": "Tell me a story."}],
        "max_tokens": 12,
        "ignore_eos": True,
        "chat_template_kwargs": {"enable_thinking": thinking},
        **fields,
    }
    if seed is not None:
        body["seed"] = seed
    resp = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=120)
    assert resp.status_code == 200, resp.text
    return resp


def text(resp: httpx.Response) -> str:
    message = resp.json()["choices"][0]["message"]
    return (message.get("reasoning") or "") + "|" + (message.get("content") or "")


@pytest.mark.parametrize("mode", MODES)
def test_unset_fields_run_the_model_cards_sampling(engine_server: Server, mode: str) -> None:
    resp = ask(engine_server, MODES[mode], seed=0)
    expected = "temperature=0.6, top_p=0.95" if MODES[mode] else "temperature=0.2, top_k=1"
    assert resp.headers["X-Sampling-Defaults"] == expected


def honours_seed(request: pytest.FixtureRequest) -> bool:
    return bool(request.node.callspec.params["engine_server"] == "cpu")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("field", ALONE, ids=lambda f: next(iter(f)))
def test_one_field_set_samples_with_neutral_others(
    engine_server: Server, request: pytest.FixtureRequest, mode: str, field: dict[str, Any]
) -> None:
    outputs = [text(ask(engine_server, MODES[mode], seed=seed, **field)) for seed in (0, 1, 2)]
    # Thinking off, the model card is greedy: had its top_k 1 been kept, every seed would
    # give one answer.
    assert len(set(outputs)) > 1, outputs
    again = ask(engine_server, MODES[mode], seed=1, **field)
    assert again.headers["X-Sampling-Defaults"] == "none"
    if honours_seed(request):
        assert text(again) == outputs[1]  # the same seed: the same output
        assert "Warning" not in again.headers
    else:
        assert "'seed' is not applied" in again.headers["Warning"]


@pytest.mark.parametrize("mode", MODES)
def test_temperature_zero_is_greedy(engine_server: Server, mode: str) -> None:
    outputs = {text(ask(engine_server, MODES[mode], seed=seed, temperature=0)) for seed in (0, 1)}
    greedy = text(ask(engine_server, MODES[mode], seed=5, top_k=1))
    assert outputs == {greedy}


def test_model_card_greedy_mode_is_seed_independent(engine_server: Server) -> None:
    """The control for the tests above: with nothing set, thinking off is greedy."""
    outputs = {text(ask(engine_server, False, seed=seed)) for seed in (0, 1, 2)}
    assert len(outputs) == 1


def test_streamed_response_says_which_defaults_applied(engine_server: Server) -> None:
    body = {
        "model": TINY,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 2,
        "stream": True,
        "top_p": 0.5,
    }
    with httpx.stream("POST", engine_server.url + "/v1/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        assert resp.headers["X-Sampling-Defaults"] == "none"
        assert resp.read().decode().rstrip().endswith("data: [DONE]")


def test_text_completions_say_when_the_seed_is_not_applied(
    engine_server: Server, request: pytest.FixtureRequest
) -> None:
    body = {"model": TINY, "prompt": "Once", "max_tokens": 4, "seed": 3, "temperature": 1}
    resp = httpx.post(engine_server.url + "/v1/completions", json=body, timeout=60)
    assert resp.status_code == 200
    assert ("Warning" not in resp.headers) == honours_seed(request)
