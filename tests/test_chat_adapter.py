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
