"""Reasoning over HTTP: reasoning/content split, thinking on/off, and enforced budgets."""

from __future__ import annotations

from typing import Any

import pytest
from openai import OpenAI

from tests.conftest import TINY, Server

END = ".\n\n</think>"


@pytest.fixture(scope="module")
def client(engine_server: Server) -> OpenAI:
    return OpenAI(base_url=engine_server.url + "/v1", api_key="x", max_retries=0)


@pytest.fixture(scope="module")
def hard_server(server_factory) -> Server:  # type: ignore[no-untyped-def]
    """Grace 0 (hard stop at the budget), only the ``reasoning`` field, answer reserve 8."""
    return server_factory(
        "--thinking-grace-tokens",
        "0",
        "--reasoning-answer-reserve",
        "8",
        "--no-warmup",
        env={"OMNI_SGLANG_REASONING_FIELDS": "reasoning"},
    )


@pytest.fixture(scope="module")
def hard(hard_server: Server) -> OpenAI:
    return OpenAI(base_url=hard_server.url + "/v1", api_key="x", max_retries=0)


def force(processor: str, tok: Any, text: str, eos: bool = True) -> dict[str, Any]:
    params: dict[str, Any] = {"force": tok(text, add_special_tokens=False).input_ids}
    if eos:
        params["eos"] = tok.convert_tokens_to_ids("<|im_end|>")
    return {"custom_logit_processor": processor, "custom_params": params}


MSGS = [{"role": "user", "content": "What is 2 + 2?"}]


def test_split_whole_and_streamed_agree(
    client: OpenAI, force_tokens_processor: str, tok: Any
) -> None:
    said = "Two plus two is four.\n</think>\nThe answer is 4."
    extra = force(force_tokens_processor, tok, said)
    resp = client.chat.completions.create(model=TINY, messages=MSGS, extra_body=extra)  # type: ignore[arg-type]
    msg = resp.choices[0].message
    assert msg.reasoning == "Two plus two is four.\n"  # type: ignore[attr-defined]
    assert msg.reasoning_content == msg.reasoning  # type: ignore[attr-defined]
    assert msg.content == "\nThe answer is 4."
    # The reasoning's own tokens; the closing tag is markup.
    thought = len(tok("Two plus two is four.\n", add_special_tokens=False).input_ids)
    assert resp.usage is not None and resp.usage.completion_tokens_details is not None
    assert resp.usage.completion_tokens_details.reasoning_tokens == thought

    stream = client.chat.completions.create(
        model=TINY,
        messages=MSGS,
        extra_body=extra,
        stream=True,  # type: ignore[arg-type]
    )
    kinds, reasoning, content = [], "", ""
    for chunk in stream:
        delta = chunk.choices[0].delta
        if getattr(delta, "reasoning", None):
            kinds.append("r")
            reasoning += delta.reasoning  # type: ignore[attr-defined]
            assert delta.reasoning_content == delta.reasoning  # type: ignore[attr-defined]
        if delta.content:
            kinds.append("c")
            content += delta.content
    assert (reasoning, content) == (msg.reasoning, msg.content)  # type: ignore[attr-defined]
    assert kinds == sorted(kinds, reverse=True)  # all reasoning first, then content


def test_thinking_off_is_content_only(
    client: OpenAI, force_tokens_processor: str, tok: Any
) -> None:
    extra = force(force_tokens_processor, tok, "Four.")
    extra["chat_template_kwargs"] = {"enable_thinking": False}
    msg = client.chat.completions.create(model=TINY, messages=MSGS, extra_body=extra).choices[0]  # type: ignore[arg-type]
    assert msg.message.content == "Four."
    assert msg.message.reasoning is None  # type: ignore[attr-defined]


def test_no_think_in_system_prompt(client: OpenAI, force_tokens_processor: str, tok: Any) -> None:
    extra = force(force_tokens_processor, tok, "Four.")
    msgs = [{"role": "system", "content": "/no_think"}, *MSGS]
    msg = client.chat.completions.create(model=TINY, messages=msgs, extra_body=extra).choices[0]  # type: ignore[arg-type]
    assert (msg.message.content, msg.message.reasoning) == ("Four.", None)  # type: ignore[attr-defined]


def test_truncated_output_keeps_its_reasoning(
    client: OpenAI, force_tokens_processor: str, tok: Any
) -> None:
    said = "A long line of thought that never ends"
    extra = force(force_tokens_processor, tok, said, eos=False)
    choice = client.chat.completions.create(
        model=TINY,
        messages=MSGS,
        max_tokens=5,
        extra_body=extra,  # type: ignore[arg-type]
    ).choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content == ""
    assert choice.message.reasoning and said.startswith(choice.message.reasoning)  # type: ignore[attr-defined]


# Keep the random model from closing its reasoning by itself before the budget.
NO_SELF_CLOSE = {"</think>": -100, "<tool_call>": -100}


def budget_request(
    client: OpenAI, tok: Any, budget: int, max_tokens: int, temperature: float = 0, **fields: Any
) -> Any:
    bias = {str(tok.convert_tokens_to_ids(t)): v for t, v in NO_SELF_CLOSE.items()}
    body = {"ignore_eos": True, "logit_bias": bias, **fields}
    if budget is not None:
        body.setdefault("thinking_token_budget", budget)
    return client.chat.completions.create(
        model=TINY,
        messages=MSGS,
        max_tokens=max_tokens,
        temperature=temperature,  # type: ignore[arg-type]
        seed=3,
        extra_body=body,
    )


@pytest.mark.parametrize("budget", [0, 1, 7, 100])
def test_hard_budget_holds(hard: OpenAI, tok: Any, budget: int) -> None:
    resp = budget_request(hard, tok, budget, max_tokens=budget + 12)
    msg, usage = resp.choices[0].message, resp.usage
    assert usage is not None and usage.completion_tokens_details is not None
    # Exactly the budget, the forced end's text (".\n\n") inside it; then the answer.
    assert usage.completion_tokens_details.reasoning_tokens == budget
    if budget >= len(tok(END, add_special_tokens=False).input_ids) - 1:
        assert msg.reasoning.endswith(".\n\n")  # type: ignore[attr-defined]
    elif budget == 0:
        assert msg.reasoning is None  # type: ignore[attr-defined]
    assert msg.content  # the answer follows
    assert not hasattr(msg, "reasoning_content") or msg.reasoning_content is None  # type: ignore[attr-defined]


def test_budget_with_grace_finishes_the_line(client: OpenAI, tok: Any) -> None:
    """Budget 100, default grace (100 // 16 = 6): the end must start by 97, and a line
    end from 91 on starts it. The model is pushed to write line ends all the time."""
    budget, newline = 100, tok("\n", add_special_tokens=False).input_ids[0]
    bias = {str(tok.convert_tokens_to_ids(t)): v for t, v in NO_SELF_CLOSE.items()}
    resp = budget_request(
        client, tok, budget, max_tokens=budget + 10, logit_bias={**bias, str(newline): 8}
    )
    details = resp.usage.completion_tokens_details  # type: ignore[union-attr]
    # Line ends before 91 were ignored; the first one in the window closed it early.
    assert 91 + 3 <= details.reasoning_tokens < budget
    reasoning = resp.choices[0].message.reasoning  # type: ignore[attr-defined]
    assert reasoning.endswith("\n.\n\n")
    assert resp.choices[0].message.content


@pytest.mark.parametrize(
    "spelling",
    [
        {"reasoning_budget": 7},
        {"chat_template_kwargs": {"reasoning_budget": 7}},
        {"nvext": {"max_thinking_tokens": 7}},
    ],
)
def test_budget_spellings_are_equivalent(hard: OpenAI, tok: Any, spelling: dict) -> None:
    reference = budget_request(hard, tok, 7, max_tokens=25)
    other = budget_request(hard, tok, None, max_tokens=25, **spelling)  # type: ignore[arg-type]
    assert other.choices[0].message.reasoning == reference.choices[0].message.reasoning  # type: ignore[attr-defined]
    assert other.choices[0].message.content == reference.choices[0].message.content


def test_answer_reserve_keeps_room_for_content(hard: OpenAI, tok: Any) -> None:
    """No budget sent, small max_tokens: the server's reserve (8) still leaves an answer."""
    resp = budget_request(hard, tok, None, max_tokens=30)  # type: ignore[arg-type]
    details = resp.usage.completion_tokens_details  # type: ignore[union-attr]
    assert details.reasoning_tokens == 30 - 8 - 1  # all but the reserve and </think>
    assert resp.usage.completion_tokens - details.reasoning_tokens == 9  # type: ignore[union-attr]
    assert resp.choices[0].message.content


def test_unlimited_budget_and_multi_turn_reasoning_fields(client: OpenAI) -> None:
    msgs = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!", "reasoning": "Greet back."},
        {"role": "assistant", "content": "Again.", "reasoning_content": "Repeat."},
        {"role": "user", "content": "Bye"},
    ]
    resp = client.chat.completions.create(
        model=TINY,
        messages=msgs,
        max_tokens=5,
        extra_body={"thinking_token_budget": -1},  # type: ignore[arg-type]
    )
    assert resp.choices[0].finish_reason in ("stop", "length")
