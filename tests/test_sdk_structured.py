"""The clients' own structured-output helpers against our server on the random tiny
model (issue 13, part 3), on both engines: the OpenAI SDK's ``chat.completions.parse``
with a Pydantic ``response_format`` and with ``openai.pydantic_function_tool`` tools, and
LangChain's ``with_structured_output`` and ``bind_tools(..., tool_choice=...)``. The
clients validate what they get with the Pydantic models; only the grammar can make a
random model pass."""

from __future__ import annotations

from typing import Any, Literal

import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel, Field

from tests.conftest import TINY, Server

NO_THINK = {"chat_template_kwargs": {"enable_thinking": False}}
SEEDS = range(3)


class Address(BaseModel):
    city: str = Field(min_length=1, max_length=12)
    zip: int = Field(ge=1000, le=99999)


class Order(BaseModel):
    item: Literal["tea", "coffee", "juice"]
    count: int = Field(ge=1, le=9)
    name: str = Field(max_length=10)
    address: Address


class GetWeather(BaseModel):
    """The weather in a city."""

    city: Literal["Paris", "Tokyo"]
    days: int = Field(ge=1, le=7)
    units: Literal["metric", "imperial"]


@pytest.fixture(scope="module")
def client(engine_server: Server) -> OpenAI:
    return OpenAI(base_url=engine_server.url + "/v1", api_key="x", max_retries=0)


@pytest.mark.parametrize("seed", SEEDS)
def test_openai_parse_with_a_pydantic_response_format(client: OpenAI, seed: int) -> None:
    completion = client.chat.completions.parse(
        model=TINY,
        messages=[{"role": "user", "content": "Order a drink."}],
        response_format=Order,
        max_tokens=300,
        temperature=1.0,
        seed=seed,
        extra_body=NO_THINK,
    )
    assert isinstance(completion.choices[0].message.parsed, Order)


@pytest.mark.parametrize("tool_choice", ["required", "named"])
@pytest.mark.parametrize("seed", SEEDS)
def test_openai_parse_with_pydantic_function_tools(
    client: OpenAI, seed: int, tool_choice: str
) -> None:
    choice: Any = tool_choice
    if tool_choice == "named":
        choice = {"type": "function", "function": {"name": "GetWeather"}}
    # Both spellings the SDK has had: beta's (older code) and the current one.
    parse = client.beta.chat.completions.parse if seed % 2 else client.chat.completions.parse
    completion = parse(
        model=TINY,
        messages=[{"role": "user", "content": "Weather in Paris for two days?"}],
        tools=[openai.pydantic_function_tool(GetWeather)],
        tool_choice=choice,
        parallel_tool_calls=False,
        max_tokens=300,
        temperature=1.0,
        seed=seed,
        extra_body=NO_THINK,
    )
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert len(message.tool_calls or []) == 1
    assert isinstance(message.tool_calls[0].function.parsed_arguments, GetWeather)  # type: ignore[index]


def chat_model(server: Server, seed: int) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=TINY,
        base_url=server.url + "/v1",
        api_key="x",  # type: ignore[arg-type]
        temperature=1.0,
        seed=seed,
        max_tokens=300,  # type: ignore[call-arg]
        extra_body=NO_THINK,
        max_retries=0,
    )


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
@pytest.mark.parametrize("seed", SEEDS)
def test_langchain_with_structured_output(engine_server: Server, seed: int, method: str) -> None:
    model = chat_model(engine_server, seed).with_structured_output(Order, method=method)
    assert isinstance(model.invoke("Order a drink."), Order)


@pytest.mark.parametrize("tool_choice", ["any", "GetWeather"])
def test_langchain_bind_tools_with_tool_choice(engine_server: Server, tool_choice: str) -> None:
    model = chat_model(engine_server, 7).bind_tools([GetWeather], tool_choice=tool_choice)
    reply = model.invoke("Weather in Paris for two days?")
    assert [call["name"] for call in reply.tool_calls] == ["GetWeather"]
    GetWeather.model_validate(reply.tool_calls[0]["args"])
