"""The chat adapter: template inputs and the SGLang request it builds (in-process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from omni_sglang.adapter.chat import prepare_chat
from omni_sglang.errors import InvalidRequestError
from omni_sglang.protocol.openai import ChatCompletionRequest
from omni_sglang.state import ServerState
from omni_sglang_nemotron.plugin import BUDGET_KEY
from tests.conftest import adapter_state, chat_request


@pytest.fixture(scope="module")
async def state(tiny_model_path: Path) -> AsyncIterator[ServerState]:
    async with adapter_state(tiny_model_path, enable_custom_logit_processor=True) as st:
        yield st


def chat(**fields: Any) -> ChatCompletionRequest:
    return chat_request(**fields)  # type: ignore[no-any-return]


async def test_model_card_sampling_defaults_per_mode(state: ServerState) -> None:
    on = (await prepare_chat(chat(), state)).request.sampling_params
    assert (on["temperature"], on["top_p"]) == (0.6, 0.95)
    off = (
        await prepare_chat(chat(chat_template_kwargs={"enable_thinking": False}), state)
    ).request.sampling_params
    assert (off["temperature"], off["top_k"]) == (0.2, 1)
    # A request that chose a distribution field gets the engine's neutral values for the
    # others, not the model card's.
    explicit = await prepare_chat(chat(temperature=1.0), state)
    assert explicit.request.sampling_params["temperature"] == 1.0
    assert not {"top_p", "top_k"} & set(explicit.request.sampling_params)
    assert explicit.sampling_defaults == {}
    penalties = await prepare_chat(chat(presence_penalty=0.5), state)  # not a distribution field
    assert penalties.sampling_defaults == {"temperature": 0.6, "top_p": 0.95}


async def test_history_reasoning_reaches_the_template(state: ServerState) -> None:
    msgs = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!", "reasoning_content": "Be polite."},
        {"role": "user", "content": "Again"},
    ]
    truncated = (await prepare_chat(chat(messages=msgs), state)).prompt
    assert "Be polite." not in truncated  # the template drops old reasoning by default
    kept = (
        await prepare_chat(
            chat(messages=msgs, chat_template_kwargs={"truncate_history_thinking": False}), state
        )
    ).prompt
    assert "<think>\nBe polite.\n</think>\nHello!" in kept
    last = (
        await prepare_chat(
            chat(messages=msgs[:2], add_generation_prompt=False, continue_final_message=True), state
        )
    ).prompt
    assert "<think>\nBe polite.\n</think>\nHello!" in last


async def test_budget_attaches_the_processor(state: ServerState) -> None:
    req = (await prepare_chat(chat(thinking_token_budget=12), state)).request
    assert req.custom_logit_processor == state.budget_processor
    assert req.sampling_params["custom_params"][BUDGET_KEY] == 12
    off = (
        await prepare_chat(
            chat(thinking_token_budget=12, chat_template_kwargs={"enable_thinking": False}), state
        )
    ).request
    assert off.custom_logit_processor is None  # nothing to cap


async def test_budget_conflicts(state: ServerState) -> None:
    with pytest.raises(InvalidRequestError, match="conflicting"):
        (await prepare_chat(chat(thinking_token_budget=3, nvext={"max_thinking_tokens": 4}), state))
    with pytest.raises(InvalidRequestError, match="cannot be combined"):
        (await prepare_chat(chat(thinking_token_budget=3, custom_logit_processor="x"), state))


def budget_of(prepared: Any) -> int | None:
    params = prepared.request.sampling_params.get("custom_params") or {}
    return params.get(BUDGET_KEY)


@pytest.mark.parametrize(("effort", "budget"), [("minimal", 256), ("low", 1024), ("medium", 4096)])
async def test_reasoning_effort_sets_the_budget(
    state: ServerState, effort: str, budget: int
) -> None:
    prepared = await prepare_chat(chat(reasoning_effort=effort), state)
    assert budget_of(prepared) == budget
    assert prepared.prompt.endswith("<think>\n")  # thinking on
    same = await prepare_chat(chat(reasoning_effort=effort, thinking_token_budget=budget), state)
    assert budget_of(same) == budget  # agreeing fields are fine


async def test_reasoning_effort_high_is_no_cap_and_none_is_thinking_off(state: ServerState) -> None:
    high = await prepare_chat(chat(reasoning_effort="high"), state)
    assert budget_of(high) is None and high.prompt.endswith("<think>\n")
    off = await prepare_chat(chat(reasoning_effort="none"), state)
    assert budget_of(off) is None and not off.prompt.endswith("<think>\n")
    plain_off = await prepare_chat(chat(chat_template_kwargs={"enable_thinking": False}), state)
    assert off.prompt == plain_off.prompt


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({"reasoning_effort": "low", "thinking_token_budget": 100}, ["reasoning_effort", "100"]),
        ({"reasoning_effort": "none", "thinking_token_budget": 5}, ["'none'", "budget of 5"]),
        (
            {"reasoning_effort": "low", "chat_template_kwargs": {"enable_thinking": False}},
            ["reasoning_effort 'low'", "chat_template_kwargs.enable_thinking=False"],
        ),
    ],
)
async def test_conflicting_effort_and_budget_is_a_400(
    state: ServerState, fields: dict[str, Any], names: list[str]
) -> None:
    with pytest.raises(InvalidRequestError) as err:
        await prepare_chat(chat(**fields), state)
    assert all(name in err.value.message for name in names), err.value.message


def test_unknown_reasoning_effort_is_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="'none', 'minimal', 'low', 'medium' or 'high'"):
        chat(reasoning_effort="extreme")


async def test_server_default_budget_applies_when_a_request_sets_none(
    tiny_model_path: Path,
) -> None:
    async with adapter_state(tiny_model_path, default_thinking_budget=64) as st:
        assert budget_of(await prepare_chat(chat(), st)) == 64
        assert budget_of(await prepare_chat(chat(thinking_token_budget=8), st)) == 8
        assert budget_of(await prepare_chat(chat(thinking_token_budget=-1), st)) is None
