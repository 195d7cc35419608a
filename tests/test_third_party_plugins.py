"""A third party's plugins, installed as their own distribution, drive a real server."""

from __future__ import annotations

import json

import httpx
import pytest
from openai import OpenAI

from tests.conftest import Server


@pytest.fixture(scope="module")
def echo_server(server_factory) -> Server:  # type: ignore[no-untyped-def]
    return server_factory(
        "--engine",
        "echo",
        "--served-model-name",
        "echo",
        "--reasoning-parser",
        "brackets",
        "--tool-parser",
        "call_lines",
        "--modality-processor",
        "",  # the Nemotron media processor needs the Nemotron tokenizer
        "--thinking-budget-processor",
        "",
        "--no-warmup",
    )


TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def test_engine_reasoning_and_tool_plugins_used(echo_server: Server) -> None:
    client = OpenAI(base_url=echo_server.url + "/v1", api_key="x", max_retries=0)
    said = '[[let me think]]Answer.\nCALL {"name": "lookup", "arguments": {"q": "x"}}'
    resp = client.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": said}],
        tools=TOOLS,  # type: ignore[list-item]
        max_tokens=200,
    )
    msg = resp.choices[0].message
    assert msg.reasoning == "let me think"  # type: ignore[attr-defined]
    assert msg.content == "Answer.\n"
    assert msg.tool_calls and msg.tool_calls[0].function.name == "lookup"
    assert json.loads(msg.tool_calls[0].function.arguments) == {"q": "x"}
    assert resp.choices[0].finish_reason == "tool_calls"


def test_streamed_plugins_match(echo_server: Server) -> None:
    client = OpenAI(base_url=echo_server.url + "/v1", api_key="x", max_retries=0)
    said = "[[a b c]]the answer"
    stream = client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": said}], stream=True, max_tokens=200
    )
    reasoning = content = ""
    for chunk in stream:
        if chunk.choices:
            delta = chunk.choices[0].delta
            reasoning += getattr(delta, "reasoning", None) or ""
            content += delta.content or ""
    assert (reasoning, content) == ("a b c", "the answer")


def test_metadata_names_the_plugins(echo_server: Server) -> None:
    meta = httpx.get(echo_server.url + "/v1/metadata").json()
    assert meta["engine"] == "echo"
    assert meta["plugins"]["reasoning"] == "BracketReasoningPlugin"
    assert meta["plugins"]["tools"] == "CallLineToolPlugin"
