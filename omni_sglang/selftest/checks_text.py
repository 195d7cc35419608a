"""Checks without media: the endpoints, the seed's text, reasoning, budget and tool
examples, streaming, errors, and SGLang's native ``/generate`` and frontend language.
Each holds on any model, a random one included: they judge shapes, counts and grammar,
never the answer."""

from __future__ import annotations

import json
from typing import Any

from omni_sglang.selftest.context import Context
from omni_sglang.selftest.result import CheckFailed, expect

SYSTEM_AND_USER = [
    {"role": "system", "content": "You are a helpful assistant"},
    {"role": "user", "content": "Create a detailed itinerary for a week-long trip."},
]
THINK_MARKERS = ("<think>", "</think>")
#: Room for a grammar-forced call after capped reasoning (a random model writes long digits).
TOOL_MAX_TOKENS = 400
#: A schema the call grammar must hold on any model: an enum, integer bounds, a pattern.
#: (A bare maxLength is not held where byte tokens form invalid UTF-8: issue 13.)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather forecast for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "pattern": "^[A-Za-z ]{1,24}$"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit", "days"],
            "additionalProperties": False,
        },
    },
}


def health(ctx: Context, metrics: dict[str, Any]) -> str:
    for path in ("/v1/health/live", "/v1/health/ready"):
        expect(ctx.client.get(path).status_code == 200, f"{path} is not 200")
    models = ctx.client.ok_json(ctx.client.get("/v1/models"))["data"]
    expect(models and all(m.get("object") == "model" for m in models), f"/v1/models: {models}")
    ctx.client.model = models[0]["id"]
    meta = ctx.client.ok_json(ctx.client.get("/v1/metadata"))
    version = ctx.client.ok_json(ctx.client.get("/v1/version"))
    metrics.update(model=ctx.client.model, engine=meta.get("engine"), server=version)
    metrics["model_urls"] = [m.get("modelUrl") for m in meta.get("modelInfo", [])]
    expect(ctx.client.get("/metrics").status_code == 200, "/metrics is not 200")
    return f"{ctx.client.model} on the {meta.get('engine')} engine"


def text_only(ctx: Context, metrics: dict[str, Any]) -> str:
    answer = ctx.client.chat(messages=SYSTEM_AND_USER, max_tokens=ctx.max_tokens)
    choice, usage = answer["choices"][0], answer["usage"]
    expect(answer.get("object") == "chat.completion", f"object is {answer.get('object')!r}")
    expect(choice["message"]["role"] == "assistant", f"role {choice['message']['role']!r}")
    expect(choice["finish_reason"] in ("stop", "length"), f"finish {choice['finish_reason']!r}")
    expect(
        usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"],
        f"usage does not add up: {usage}",
    )
    metrics.update(usage=usage)
    return f"{usage['completion_tokens']} tokens, finish_reason {choice['finish_reason']}"


def _no_markers(message: dict[str, Any]) -> None:
    """The reasoning ends at the first close. (The opening marker is the chat template's,
    in the prompt; a model may still write ``<think>`` itself, anywhere in its reasoning,
    as a random one does now and then, and the content may hold a marker written after
    closing: output, not a split.)"""
    text = message.get("reasoning") or ""
    closing = THINK_MARKERS[1]
    expect(closing not in text, f"the reasoning holds the marker {closing}: {text[:120]!r}")


def reasoning_split(ctx: Context, metrics: dict[str, Any]) -> str:
    thinking = ctx.client.chat(messages=SYSTEM_AND_USER, max_tokens=ctx.max_tokens)
    _no_markers(thinking["choices"][0]["message"])
    details = thinking["usage"]["completion_tokens_details"]
    expect(
        details["reasoning_tokens"] <= thinking["usage"]["completion_tokens"],
        f"more reasoning than completion tokens: {thinking['usage']}",
    )
    off = ctx.client.chat(
        messages=SYSTEM_AND_USER,
        max_tokens=32,
        chat_template_kwargs={"enable_thinking": False},
    )
    message = off["choices"][0]["message"]
    _no_markers(message)
    expect(not message.get("reasoning"), f"thinking off, yet reasoning: {message['reasoning']!r}")
    expect(off["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0, "reasoning counted")
    metrics.update(reasoning_tokens=details["reasoning_tokens"])
    return f"thinking on: {details['reasoning_tokens']} reasoning tokens; off: none"


def thinking_budget(ctx: Context, metrics: dict[str, Any]) -> str:
    seen = {}
    for budget in (0, 16):
        answer = ctx.client.chat(
            messages=[{"role": "user", "content": "What is the derivative of x^2?"}],
            max_tokens=budget + 64,
            thinking_token_budget=budget,
        )
        used = answer["usage"]["completion_tokens_details"]["reasoning_tokens"]
        expect(used <= budget, f"budget {budget}, yet {used} reasoning tokens")
        _no_markers(answer["choices"][0]["message"])
        seen[budget] = used
    metrics.update(reasoning_tokens_by_budget=seen)
    return "reasoning tokens within the budget: " + ", ".join(
        f"{used} of {budget}" for budget, used in seen.items()
    )


def streaming_equals_whole(ctx: Context, metrics: dict[str, Any]) -> str:
    body: dict[str, Any] = dict(messages=SYSTEM_AND_USER, max_tokens=64, temperature=0.0, seed=0)
    whole = ctx.client.chat(**body)["choices"][0]["message"]
    streamed = ctx.client.stream_chat(**body)
    expect(
        (streamed.reasoning, streamed.content)
        == (whole.get("reasoning") or "", whole.get("content") or ""),
        "the stream and the whole answer differ at temperature 0",
    )
    tokens = streamed.usage.get("completion_tokens", 0)
    decode = streamed.seconds - (streamed.ttft or 0.0)
    metrics.update(ttft_s=streamed.ttft, tokens=tokens, seconds=streamed.seconds)
    metrics["tokens_per_s"] = (tokens - 1) / decode if tokens > 1 and decode > 0 else None
    rate = metrics["tokens_per_s"]
    return f"equal; TTFT {streamed.ttft or 0:.3f} s" + (f", {rate:.0f} tok/s" if rate else "")


def _valid_call(call: dict[str, Any]) -> dict[str, Any]:
    import jsonschema

    function = call["function"]
    expect(function["name"] == "get_weather", f"called {function['name']!r}")
    args = json.loads(function["arguments"])
    try:
        jsonschema.validate(args, WEATHER_TOOL["function"]["parameters"])  # type: ignore[index]
    except jsonschema.ValidationError as exc:
        raise CheckFailed(f"arguments {args} break the schema: {exc.message}") from exc
    return dict(args)


def tool_calls(ctx: Context, metrics: dict[str, Any]) -> str:
    question = [
        {
            "role": "user",
            "content": "What will the weather be in Paris for the next 3 days, in celsius?",
        }
    ]
    calls = {}
    # "required" without thinking; the named call after a short, capped reasoning (the
    # grammar waits for the reasoning's end).
    forced: dict[str, dict[str, Any]] = {
        "required": {"chat_template_kwargs": {"enable_thinking": False}},
        "named": {"thinking_token_budget": 32},
    }
    named = {"type": "function", "function": {"name": "get_weather"}}
    for label, fields in forced.items():
        answer = ctx.client.chat(
            messages=question,
            tools=[WEATHER_TOOL],
            tool_choice="required" if label == "required" else named,
            max_tokens=TOOL_MAX_TOKENS,
            parallel_tool_calls=False,  # one call, then the grammar ends the answer
            temperature=0.0,
            **fields,
        )
        first = answer["choices"][0]
        expect(
            first["finish_reason"] == "tool_calls", f"{label}: finish {first['finish_reason']!r}"
        )
        expect(len(first["message"].get("tool_calls") or []) == 1, f"{label}: not one call")
        calls[label] = _valid_call(first["message"]["tool_calls"][0])
    auto = ctx.client.chat(
        messages=question, tools=[WEATHER_TOOL], max_tokens=TOOL_MAX_TOKENS, temperature=0.0
    )
    for call in auto["choices"][0]["message"].get("tool_calls") or []:
        _valid_call(call)
    metrics.update(arguments=calls)
    return "required and named calls match the schema; auto answered"


def errors_are_4xx_json(ctx: Context, metrics: dict[str, Any]) -> str:
    bad: dict[str, dict[str, Any]] = {
        "unknown field": {"messages": SYSTEM_AND_USER, "no_such_field": 1},
        "bad image": {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
                    ],
                }
            ]
        },
        "negative max_tokens": {"messages": SYSTEM_AND_USER, "max_tokens": -1},
    }
    for label, body in bad.items():
        resp = ctx.client.post("/v1/chat/completions", {"model": ctx.client.model, **body})
        expect(400 <= resp.status_code < 500, f"{label}: status {resp.status_code}")
        message = resp.json().get("error", {}).get("message")
        expect(message, f"{label}: no error message in {resp.text[:200]}")
    return f"{len(bad)} bad requests refused with a 4xx JSON error"


def completions(ctx: Context, metrics: dict[str, Any]) -> str:
    answer = ctx.client.ok_json(
        ctx.client.post(
            "/v1/completions", {"model": ctx.client.model, "prompt": "Once upon", "max_tokens": 8}
        )
    )
    expect(answer["object"] == "text_completion", f"object {answer['object']!r}")
    expect(isinstance(answer["choices"][0]["text"], str), "no text")
    return f"{answer['usage']['completion_tokens']} tokens"


def native_generate(ctx: Context, metrics: dict[str, Any]) -> str:
    body = {"text": "Once upon a time", "sampling_params": {"max_new_tokens": 8, "temperature": 0}}
    answer = ctx.client.ok_json(ctx.client.post("/generate", body))
    expect(isinstance(answer.get("text"), str), f"no text: {answer}")
    meta = answer.get("meta_info", {})
    expect(meta.get("completion_tokens", 0) > 0, f"meta_info: {meta}")
    return f"/generate: {meta['completion_tokens']} tokens"


def frontend_program(ctx: Context, metrics: dict[str, Any]) -> str:
    """An SGLang frontend-language program (select and gen) through RuntimeEndpoint."""
    import sglang as sgl

    @sgl.function
    def program(s: Any) -> None:
        s += "Question: is the sky blue? Answer:" + sgl.select("answer", choices=["yes", "no"])
        s += " Because" + sgl.gen("why", max_tokens=8)

    backend = sgl.RuntimeEndpoint(ctx.client.url, api_key=ctx.client.api_key)
    state = program.run(backend=backend)
    expect(state["answer"] in ("yes", "no"), f"select gave {state['answer']!r}")
    expect(isinstance(state["why"], str), "gen gave no text")
    return f"select -> {state['answer']!r}, gen -> {len(state['why'])} characters"
