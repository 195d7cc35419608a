"""Forced tool calls hold to the whole JSON schema (issue 13, part 1), on both engines:
enum, integer bounds, string length, a nested object, an array, required and additional
properties. The tiny random model never keeps a schema by itself, so only the grammar
(xgrammar's structural tag for the qwen3-coder format) can make these pass; the calls
are validated with jsonschema after our tool-call parser turned the text back into
arguments, streamed and not."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jsonschema
import pytest
from openai import OpenAI

from tests.conftest import TINY, Server

#: Seeds per engine and tool_choice, sent concurrently (the engines batch them).
SEEDS = range(100)
BOOKING = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "enum": ["Paris", "Tokyo"]},
        "nights": {"type": "integer", "minimum": 1, "maximum": 14},
        "guest": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 12},
                "vip": {"type": "boolean"},
            },
            "required": ["name", "vip"],
            "additionalProperties": False,
        },
        "extras": {
            "type": "array",
            "items": {"type": "string", "enum": ["breakfast", "parking"]},
            "maxItems": 2,
        },
        "note": {"type": "string", "minLength": 2, "maxLength": 20},
        "currency": {"type": "string", "const": "EUR"},
    },
    "required": ["city", "nights", "guest", "currency"],
    "additionalProperties": False,
}
TOOLS = [
    {"type": "function", "function": {"name": "book", "parameters": BOOKING}},
    {
        "type": "function",
        "function": {
            "name": "cancel",
            "parameters": {
                "type": "object",
                "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}[0-9]{2}$"}},
                "required": ["code"],
            },
        },
    },
]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
CHOICES = {
    "required": "required",
    "named": {"type": "function", "function": {"name": "book"}},
    "auto": "auto",  # with the call's first token forced: the grammar holds the rest
}
#: The tiny tokenizer's single token for the call start (tool_parser.CALL_START).
CALL_START = "<tool_call>"


@pytest.fixture(scope="module")
def client(engine_server: Server) -> OpenAI:
    return OpenAI(base_url=engine_server.url + "/v1", api_key="x", max_retries=0)


def ask(
    client: OpenAI, choice: Any, seed: int, stream: bool, extra: dict[str, Any] | None = None
) -> tuple[str | None, list[Any]]:
    kwargs: dict[str, Any] = dict(
        model=TINY,
        messages=[{"role": "user", "content": "Book two nights in Paris."}],
        tools=TOOLS,
        tool_choice=choice,
        parallel_tool_calls=False,
        max_tokens=300,
        temperature=1.0,
        seed=seed,
        extra_body={"chat_template_kwargs": {"enable_thinking": False}, **(extra or {})},
    )
    if not stream:
        choice0 = client.chat.completions.create(**kwargs).choices[0]
        calls = [(c.function.name, c.function.arguments) for c in choice0.message.tool_calls or []]
        return choice0.finish_reason, calls
    finish, calls = None, {}
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        delta = chunk.choices[0]
        finish = delta.finish_reason or finish
        for tc in delta.delta.tool_calls or []:
            entry = calls.setdefault(tc.index, ["", ""])
            entry[0] += (tc.function and tc.function.name) or ""
            entry[1] += (tc.function and tc.function.arguments) or ""
    return finish, [tuple(calls[i]) for i in sorted(calls)]


def call_start(processor: str, tiny_model_path: Any) -> dict[str, Any]:
    """Forces only the call's first token, then leaves the model free (no eos)."""
    from transformers import AutoTokenizer

    token = AutoTokenizer.from_pretrained(tiny_model_path).convert_tokens_to_ids(CALL_START)
    return {"custom_logit_processor": processor, "custom_params": {"force": [token]}}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("mode", sorted(CHOICES))
def test_forced_calls_match_the_schema(
    client: OpenAI, mode: str, stream: bool, force_tokens_processor: str, tiny_model_path: Any
) -> None:
    extra = call_start(force_tokens_processor, tiny_model_path) if mode == "auto" else None
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda s: ask(client, CHOICES[mode], s, stream, extra), SEEDS))
    for seed, (finish, calls) in zip(SEEDS, answers, strict=True):
        assert finish == "tool_calls" and len(calls) == 1, (seed, finish, calls)
        name, arguments = calls[0]
        assert mode != "named" or name == "book", (seed, name)
        jsonschema.validate(json.loads(arguments), SCHEMAS[name])
