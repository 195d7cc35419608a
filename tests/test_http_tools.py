"""Tool calling over HTTP on the CPU engine: parsing, streaming, forcing, formats."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from openai import OpenAI

from tests.conftest import TINY, Server
from tests.tool_corpus import TOOLS, call

MATH_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two integers",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "toggle",
            "parameters": {
                "type": "object",
                "properties": {"on": {"type": "boolean"}},
                "required": ["on"],
            },
        },
    },
]
NO_THINK = {"enable_thinking": False}
USER = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def client(engine_server: Server) -> OpenAI:
    return OpenAI(base_url=engine_server.url + "/v1", api_key="x", max_retries=0)


def forced(processor: str, tok: Any, text: str, **extra: Any) -> dict[str, Any]:
    ids = tok(text, add_special_tokens=False).input_ids
    return {
        "custom_logit_processor": processor,
        "chat_template_kwargs": NO_THINK,
        "custom_params": {"force": ids, "eos": tok.convert_tokens_to_ids("<|im_end|>")},
        **extra,
    }


def whole_and_streamed(client: OpenAI, **kwargs: Any) -> tuple[Any, tuple[str, list[Any]]]:
    whole = client.chat.completions.create(model=TINY, **kwargs)
    stream = client.chat.completions.create(model=TINY, stream=True, **kwargs)
    content, calls, finish = "", {}, None
    for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        content += choice.delta.content or ""
        for tc in choice.delta.tool_calls or []:
            if tc.index not in calls:
                assert tc.id and tc.function and tc.function.name  # id and name come first
                calls[tc.index] = {"id": tc.id, "name": tc.function.name, "arguments": ""}
            calls[tc.index]["arguments"] += (tc.function and tc.function.arguments) or ""
    assert finish == whole.choices[0].finish_reason
    return whole, (content, [calls[i] for i in sorted(calls)])


@pytest.mark.parametrize(
    ("said", "content", "expected"),
    [
        (call("get_weather", city="Paris"), None, [("get_weather", {"city": "Paris"})]),
        (
            call("get_weather", city="Paris", days="3", metric="false")
            + "\n"
            + call("get_time", zone="CET"),
            None,
            [
                ("get_weather", {"city": "Paris", "days": 3, "metric": False}),
                ("get_time", {"zone": "CET"}),
            ],
        ),
        (
            "Checking.\n" + call("get_time", zone="UTC"),
            "Checking.\n",
            [("get_time", {"zone": "UTC"})],
        ),
    ],
    ids=["one call", "parallel typed calls", "content and call"],
)
def test_forced_calls(
    client: OpenAI,
    force_tokens_processor: str,
    tok: Any,
    said: str,
    content: str | None,
    expected: list[Any],
) -> None:
    whole, (s_content, s_calls) = whole_and_streamed(
        client, messages=USER, tools=TOOLS, extra_body=forced(force_tokens_processor, tok, said)
    )
    msg = whole.choices[0].message
    assert whole.choices[0].finish_reason == "tool_calls"
    assert msg.content == content
    got = [(c.function.name, json.loads(c.function.arguments)) for c in msg.tool_calls or []]
    assert got == expected
    assert len({c.id for c in msg.tool_calls or []}) == len(expected)  # unique ids
    assert (s_content or None) == content
    assert [(c["name"], json.loads(c["arguments"])) for c in s_calls] == expected


def test_tool_choice_none_returns_text(
    client: OpenAI, force_tokens_processor: str, tok: Any
) -> None:
    said = call("get_time", zone="UTC")
    resp = client.chat.completions.create(
        model=TINY,
        messages=USER,
        tools=TOOLS,
        tool_choice="none",  # type: ignore[arg-type]
        extra_body=forced(force_tokens_processor, tok, said),
    )
    assert resp.choices[0].message.tool_calls is None
    assert resp.choices[0].message.content == said
    assert resp.choices[0].finish_reason == "stop"


def _check_call(tool_call: Any, names: set[str]) -> None:
    assert tool_call.function.name in names
    args = json.loads(tool_call.function.arguments)
    schema = next(
        t["function"]["parameters"]
        for t in MATH_TOOLS
        if t["function"]["name"] == tool_call.function.name
    )
    jsonschema.validate(args, schema)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_required_forces_a_valid_call(client: OpenAI, seed: int) -> None:
    """The tiny random model would never call a tool; the grammar makes it."""
    resp = client.chat.completions.create(
        model=TINY,
        messages=USER,
        tools=MATH_TOOLS,
        tool_choice="required",  # type: ignore[arg-type]
        parallel_tool_calls=False,
        max_tokens=400,
        temperature=1.0,
        seed=seed,
        extra_body={"chat_template_kwargs": NO_THINK},
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    assert len(choice.message.tool_calls or []) == 1  # parallel_tool_calls false
    _check_call(choice.message.tool_calls[0], {"add", "toggle"})  # type: ignore[index]


def test_named_function_after_reasoning(client: OpenAI) -> None:
    """Thinking on: the grammar waits for </think> (here forced by a budget of 0)."""
    resp = client.chat.completions.create(
        model=TINY,
        messages=USER,
        tools=MATH_TOOLS,
        max_tokens=400,
        temperature=1.0,
        seed=5,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "toggle"}},
        extra_body={"thinking_token_budget": 0},
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [c.function.name for c in choice.message.tool_calls or []] == ["toggle"]
    _check_call(choice.message.tool_calls[0], {"toggle"})  # type: ignore[index]


def test_multi_turn_with_tool_results(
    client: OpenAI, force_tokens_processor: str, tok: Any
) -> None:
    messages = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"city": "Paris", "days": 1}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
    ]
    resp = client.chat.completions.create(
        model=TINY,
        messages=messages,
        tools=TOOLS,  # type: ignore[arg-type]
        extra_body=forced(force_tokens_processor, tok, "It is 21 C in Paris."),
    )
    assert resp.choices[0].message.content == "It is 21 C in Paris."
    assert resp.choices[0].finish_reason == "stop"


SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        # Bounded: unbounded, a random model at temperature 1 may write digits until
        # max_tokens, and the cut-off JSON would not parse.
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "ok": {"type": "boolean"},
    },
    "required": ["name", "age", "ok"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("thinking", [False, True])
def test_response_format_json_schema(client: OpenAI, thinking: bool) -> None:
    extra: dict[str, Any] = {"chat_template_kwargs": {"enable_thinking": thinking}}
    if thinking:
        extra["thinking_token_budget"] = 0
    resp = client.chat.completions.create(
        model=TINY,
        messages=USER,
        max_tokens=200,
        temperature=1.0,
        seed=3,  # type: ignore[arg-type]
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": SCHEMA},
        },
        extra_body=extra,
    )
    content = resp.choices[0].message.content or ""
    jsonschema.validate(json.loads(content), SCHEMA)  # strict: no raw control characters


def test_response_format_wins_over_the_auto_tool_constraint(client: OpenAI) -> None:
    """Tools and tool_choice auto with a response_format: the format's grammar applies
    (one grammar per request), not a 400."""
    resp = client.chat.completions.create(
        model=TINY,
        messages=USER,
        tools=MATH_TOOLS,  # type: ignore[arg-type]
        max_tokens=200,
        temperature=1.0,
        seed=4,  # type: ignore[arg-type]
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": SCHEMA}},
        extra_body={"chat_template_kwargs": NO_THINK},
    )
    assert resp.choices[0].message.tool_calls is None
    jsonschema.validate(json.loads(resp.choices[0].message.content or ""), SCHEMA)


def test_auto_unconstrained_when_turned_off(
    module_server_factory: Any, force_tokens_processor: str, tok: Any
) -> None:
    """--no-constrain-auto-tools: a call the random model opens is its own (malformed,
    so it stays content); with the default, tests/test_tool_schema.py holds the same
    forced start to the schema on every seed."""
    server = module_server_factory("--enable-custom-logit-processor", "--no-constrain-auto-tools")
    free = OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
    start = {"force": [tok.convert_tokens_to_ids("<tool_call>")]}

    def ask(tools: list[Any], seed: int) -> Any:
        return free.chat.completions.create(
            model=TINY,
            messages=USER,
            tools=tools,
            parallel_tool_calls=False,  # else a random model rambles on after the call
            max_tokens=300,
            temperature=1.0,
            seed=seed,
            extra_body={
                "custom_logit_processor": force_tokens_processor,
                "custom_params": start,
                "chat_template_kwargs": NO_THINK,
            },
        ).choices[0]

    for seed in range(4):
        choice = ask(MATH_TOOLS, seed)
        assert choice.message.tool_calls is None, (seed, choice)
        assert (choice.message.content or "").startswith("<tool_call>"), (seed, choice)
    # A strict function asks for the constraint all the same (OpenAI's strict mode).
    strict = [{**t, "function": {**t["function"], "strict": True}} for t in MATH_TOOLS]
    for seed in range(4):
        choice = ask(strict, seed)
        assert choice.finish_reason == "tool_calls", (seed, choice)
        _check_call(choice.message.tool_calls[0], {"add", "toggle"})  # type: ignore[index]


def test_response_format_json_object(client: OpenAI) -> None:
    resp = client.chat.completions.create(
        model=TINY,
        messages=USER,
        max_tokens=300,
        temperature=0.7,
        seed=2,  # type: ignore[arg-type]
        response_format={"type": "json_object"},
        extra_body={"chat_template_kwargs": NO_THINK},
    )
    content = resp.choices[0].message.content or ""
    if resp.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(content), dict)
    else:  # a random model may ramble inside the object until max_tokens
        assert content.startswith("{")


def test_langchain_bind_tools(engine_server: Server, force_tokens_processor: str, tok: Any) -> None:
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_time(zone: str) -> str:
        """Current time in a time zone."""
        return "12:00"

    said = call("get_time", zone="UTC")
    model = ChatOpenAI(
        model=TINY,
        base_url=engine_server.url + "/v1",
        api_key="x",  # type: ignore[arg-type]
        extra_body=forced(force_tokens_processor, tok, said),
        max_retries=0,
    ).bind_tools([get_time])
    reply = model.invoke("What time is it in UTC?")
    assert reply.tool_calls == [
        {
            "name": "get_time",
            "args": {"zone": "UTC"},
            "id": reply.tool_calls[0]["id"],
            "type": "tool_call",
        }
    ]


def test_example_agent_loop_runs(engine_server: Server) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "examples/agent_loop.py",
            "--base-url",
            engine_server.url + "/v1",
            "--no-thinking",
            "--max-turns",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "tools called: " in result.stdout
    calls = int(result.stdout.split("tools called: ")[1].split()[0])
    assert calls >= 1  # the forced first turn ran a tool and sent its result back
