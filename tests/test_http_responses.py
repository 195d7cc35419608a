"""``/v1/responses`` through the ``openai`` SDK and LangChain, on both engines: the chat
pipeline behind OpenAI's Responses shape (items, events, usage, the store)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import jsonschema
import pytest
from openai import NotFoundError, OpenAI

from omni_sglang.media import synth
from tests.conftest import TINY, Server
from tests.tool_corpus import TOOLS, call

REASONING, ANSWER = "Let me see.", "Paris."
#: The chat tool corpus in the Responses API's flat shape.
FLAT_TOOLS = [{"type": "function", **t["function"]} for t in TOOLS]
PNG = "data:image/png;base64," + base64.b64encode(synth.image_bytes("PNG", (64, 48))).decode()


@pytest.fixture(scope="module")
def client(engine_server: Server) -> OpenAI:
    return OpenAI(base_url=engine_server.url + "/v1", api_key="x", max_retries=0)


@pytest.fixture(scope="module")
def say(force_tokens_processor: str, tok: Any) -> Any:
    """``extra_body`` that makes the model say ``text`` (then end its turn)."""

    def extra(text: str) -> dict[str, Any]:
        ids = tok(text, add_special_tokens=False).input_ids
        eos = tok.convert_tokens_to_ids("<|im_end|>")
        return {
            "custom_logit_processor": force_tokens_processor,
            "custom_params": {"force": ids, "eos": eos},
        }

    return extra


def streamed(client: OpenAI, **kwargs: Any) -> list[Any]:
    events = list(client.responses.create(model=TINY, stream=True, **kwargs))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    return events


def test_reasoning_and_answer_whole_and_streamed(client: OpenAI, say: Any) -> None:
    said = say(f"{REASONING}</think>{ANSWER}")
    whole = client.responses.create(model=TINY, input="Capital of France?", extra_body=said)
    assert whole.status == "completed"
    assert [item.type for item in whole.output] == ["reasoning", "message"]
    assert whole.output[0].content[0].text == REASONING  # type: ignore[union-attr,index]
    assert whole.output_text == ANSWER
    usage = whole.usage
    assert usage is not None and usage.output_tokens_details.reasoning_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens

    events = streamed(client, input="Capital of France?", extra_body=said)
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    thought = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    assert (thought, text) == (REASONING, ANSWER)
    final = events[-1].response
    assert final.output_text == ANSWER and final.usage == usage
    done = [e.item for e in events if e.type == "response.output_item.done"]
    assert [i.model_dump(exclude={"id"}) for i in done] == [
        i.model_dump(exclude={"id"}) for i in whole.output
    ]


@pytest.mark.parametrize("as_file", [False, True], ids=["input_image", "input_file"])
def test_instructions_and_items_render_as_the_chat_prompt(
    engine_server: Server, client: OpenAI, as_file: bool
) -> None:
    """One pipeline: a Responses request costs the prompt tokens of the chat request it
    means (instructions as the system message, the image as an image part)."""
    image = (
        {"type": "input_file", "file_data": PNG, "filename": "a.png"}
        if as_file
        else {"type": "input_image", "image_url": PNG, "detail": "auto"}
    )
    got = client.responses.create(
        model=TINY,
        instructions="Be brief.",
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": "What is this?"}, image]}
        ],  # type: ignore[list-item]
        max_output_tokens=1,
    )
    chat_parts = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG} | ({} if as_file else {"detail": "auto"})},
    ]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": chat_parts}]
    chat = httpx.post(
        engine_server.url + "/v1/chat/completions",
        json={"model": TINY, "messages": messages, "max_tokens": 1},
        timeout=180,
    )
    assert chat.status_code == 200, chat.text
    assert got.usage.input_tokens == chat.json()["usage"]["prompt_tokens"]  # type: ignore[union-attr]
    assert chat.json()["usage"]["prompt_tokens_details"]["image_tokens"] > 0


def test_function_calls_and_their_results(client: OpenAI, say: Any) -> None:
    said = call("get_weather", city="Paris") + "\n" + call("get_time", zone="CET")
    extra = {**say(said), "chat_template_kwargs": {"enable_thinking": False}}
    question = "Weather and time in Paris?"
    whole = client.responses.create(model=TINY, input=question, tools=FLAT_TOOLS, extra_body=extra)  # type: ignore[arg-type]
    calls = [item for item in whole.output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"zone": "CET"}),
    ]
    assert len({c.call_id for c in calls}) == 2

    events = streamed(client, input=question, tools=FLAT_TOOLS, extra_body=extra)
    for done in (e for e in events if e.type == "response.function_call_arguments.done"):
        deltas = [
            e.delta
            for e in events
            if e.type == "response.function_call_arguments.delta" and e.item_id == done.item_id
        ]
        assert "".join(deltas) == done.arguments and json.loads(done.arguments)

    results = [
        {"type": "function_call_output", "call_id": c.call_id, "output": "sunny, 12:00"}
        for c in calls
    ]
    replayed = [{"role": "user", "content": question}, *[c.model_dump() for c in calls], *results]
    by_items = client.responses.create(
        model=TINY, input=replayed, tools=FLAT_TOOLS, max_output_tokens=1
    )  # type: ignore[arg-type]
    by_id = client.responses.create(
        model=TINY,
        input=results,
        previous_response_id=whole.id,
        tools=FLAT_TOOLS,
        max_output_tokens=1,  # type: ignore[arg-type]
    )
    # The stored conversation is the one the client would replay (the ids aside).
    assert by_id.usage.input_tokens == by_items.usage.input_tokens  # type: ignore[union-attr]


def test_named_tool_choice_makes_a_call(client: OpenAI) -> None:
    answer = client.responses.create(
        model=TINY,
        input="Time?",
        tools=FLAT_TOOLS,  # type: ignore[arg-type]
        tool_choice={"type": "function", "name": "get_time"},
        max_output_tokens=200,
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
    )
    calls = [item for item in answer.output if item.type == "function_call"]
    assert (
        calls and calls[0].name == "get_time" and isinstance(json.loads(calls[0].arguments), dict)
    )


def test_json_schema_text_format(client: OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 12}, "ok": {"type": "boolean"}},
        "required": ["name", "ok"],
        "additionalProperties": False,
    }
    answer = client.responses.create(
        model=TINY,
        input="A person?",
        text={"format": {"type": "json_schema", "name": "person", "schema": schema}},
        reasoning={"effort": "none"},
        max_output_tokens=100,
    )
    jsonschema.validate(json.loads(answer.output_text), schema)
    assert answer.text.format.type == "json_schema"  # type: ignore[union-attr]


def test_cut_short_is_incomplete(client: OpenAI, say: Any) -> None:
    extra = {
        **say("one two three four five six"),
        "chat_template_kwargs": {"enable_thinking": False},
    }
    for answer in (
        client.responses.create(model=TINY, input="Count", max_output_tokens=3, extra_body=extra),
        streamed(client, input="Count", max_output_tokens=3, extra_body=extra)[-1].response,
    ):
        assert answer.status == "incomplete" and answer.usage.output_tokens == 3  # type: ignore[union-attr]
        assert answer.incomplete_details.reason == "max_output_tokens"  # type: ignore[union-attr]
        assert answer.output[-1].status == "incomplete"  # type: ignore[union-attr]


def test_logprobs_of_the_answer(client: OpenAI, say: Any) -> None:
    extra = {**say(ANSWER), "chat_template_kwargs": {"enable_thinking": False}}
    answer = client.responses.create(
        model=TINY,
        input="Capital?",
        top_logprobs=2,
        include=["message.output_text.logprobs"],
        extra_body=extra,
    )
    text = answer.output[0].content[0]  # type: ignore[union-attr,index]
    assert "".join(lp.token for lp in text.logprobs) == ANSWER  # type: ignore[union-attr]
    assert all(lp.logprob == 0.0 and len(lp.top_logprobs) == 2 for lp in text.logprobs)  # type: ignore[union-attr]


def test_store_retrieve_delete_and_continue(client: OpenAI) -> None:
    first = client.responses.create(model=TINY, input="Hi", max_output_tokens=4)
    assert client.responses.retrieve(first.id).model_dump() == first.model_dump()
    second = client.responses.create(
        model=TINY, input="More", previous_response_id=first.id, max_output_tokens=2
    )
    assert second.previous_response_id == first.id
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens  # type: ignore[union-attr]
    client.responses.delete(first.id)
    with pytest.raises(NotFoundError):
        client.responses.retrieve(first.id)
    unstored = client.responses.create(model=TINY, input="Hi", max_output_tokens=1, store=False)
    with pytest.raises(NotFoundError):
        client.responses.retrieve(unstored.id)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"previous_response_id": "resp_unknown"}, "no stored response"),
        ({"tools": [{"type": "web_search"}]}, "tools.0"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "Files API",
        ),
        (
            {
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_file", "file_data": "data:application/pdf;base64,AA=="}
                        ],
                    }
                ]
            },
            "application/pdf",
        ),
        ({"input": [{"type": "computer_call_output", "call_id": "c"}]}, "computer_call_output"),
        ({"input": []}, "must not be empty"),
        ({"truncation": "auto"}, "truncation"),
        ({"background": True}, "background"),
        ({"top_logprobs": 21}, "top_logprobs"),
        ({"tool_choice": "required"}, "'tool_choice' needs 'tools'"),
        ({"temperature": 3}, "temperature"),
        ({"frobnicate": 1}, "frobnicate"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_bad_requests_are_400(engine_server: Server, fields: dict[str, Any], says: str) -> None:
    body = {"model": TINY, "input": "Hi", **fields}
    got = httpx.post(engine_server.url + "/v1/responses", json=body, timeout=60)
    assert got.status_code == 400, got.text
    assert says in got.json()["error"]["message"]


def test_langchain_uses_the_responses_api(engine_server: Server, say: Any) -> None:
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_time(zone: str) -> str:
        """Current time in a time zone."""
        return "12:00"

    def model(text: str) -> ChatOpenAI:
        return ChatOpenAI(
            model=TINY,
            base_url=engine_server.url + "/v1",
            api_key="x",  # type: ignore[arg-type]
            use_responses_api=True,
            extra_body={**say(text), "chat_template_kwargs": {"enable_thinking": False}},
            max_retries=0,
        )

    assert model(ANSWER).invoke("Capital of France?").text == ANSWER
    reply = model(call("get_time", zone="UTC")).bind_tools([get_time]).invoke("Time in UTC?")
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("get_time", {"zone": "UTC"})]


def test_the_store_is_bounded_in_count_and_bytes() -> None:
    from omni_sglang.responses_store import ResponseStore, StoredResponse

    def stored(name: str, media: int = 0) -> StoredResponse:
        return StoredResponse({"id": name}, [{"role": "user", "content": "x" * media}])

    store = ResponseStore(capacity=2, max_bytes=1000)
    for name in "abc":
        store.put(stored(name))
    assert (store.get("a"), len(store)) == (None, 2)  # the oldest went first
    store.get("b")  # now c is the least recently used
    store.put(stored("d", media=600))
    assert store.get("c") is None and store.get("b") and store.get("d")
    store.put(stored("e", media=600))  # b out for the count, d for the bytes
    assert store.get("b") is None and store.get("d") is None and store.get("e")
    store.put(stored("f"))
    assert len(store) == 2  # the bytes went with what was dropped
    store.put(stored("huge", media=2000))  # alone over the bound: not kept
    assert store.get("huge") is None and store.delete("f") and not store.delete("f")
