"""A small agent loop with two tools against an omni-sglang (or any OpenAI-compatible)
server: the model asks for tools, we run them and send the results back, until it answers.

    python examples/agent_loop.py --base-url http://localhost:8000/v1 \
        "What is 17 + 25, and what is the weather in Paris?"

With the tiny random default model the first turn forces a call (tool_choice
"required") so the loop is exercised; with the real model, "auto" is all it needs.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from openai import OpenAI

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two integers.",
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
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
]


def run_tool(name: str, arguments: dict[str, Any]) -> str:
    if name == "add":
        return json.dumps({"sum": int(arguments.get("a", 0)) + int(arguments.get("b", 0))})
    if name == "get_weather":
        return json.dumps({"city": arguments.get("city"), "temp_c": 21, "sky": "clear"})
    return json.dumps({"error": f"unknown tool {name}"})


def agent(
    client: OpenAI,
    model: str,
    question: str,
    max_turns: int,
    first_required: bool,
    extra: dict[str, Any],
) -> tuple[str, int]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
    calls_made = 0
    for turn in range(max_turns):
        choice = "required" if first_required and turn == 0 else "auto"
        resp = client.chat.completions.create(
            model=model,
            messages=messages,
            tools=TOOLS,
            tool_choice=choice,  # type: ignore[arg-type]
            max_tokens=512,
            extra_body=extra,
        )
        msg = resp.choices[0].message
        if not msg.tool_calls:
            return msg.content or "", calls_made
        messages.append(
            {
                "role": "assistant",
                "content": msg.content,
                "tool_calls": [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.function.name, "arguments": c.function.arguments},
                    }
                    for c in msg.tool_calls
                ],
            }
        )
        for c in msg.tool_calls:
            result = run_tool(c.function.name, json.loads(c.function.arguments or "{}"))
            print(f"tool {c.function.name}({c.function.arguments}) -> {result}")
            messages.append({"role": "tool", "tool_call_id": c.id, "content": result})
            calls_made += 1
    return "(no final answer within the turn limit)", calls_made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "question", nargs="?", default="What is 17 + 25, and what is the weather in Paris?"
    )
    parser.add_argument("--base-url", default="http://localhost:8000/v1")
    parser.add_argument("--api-key", default="not-used")
    parser.add_argument("--model", default="nvidia/nemotron-3-nano-omni-30b-a3b-reasoning")
    parser.add_argument("--max-turns", type=int, default=3)
    parser.add_argument(
        "--no-force-first", action="store_true", help="use tool_choice auto from the first turn"
    )
    parser.add_argument("--no-thinking", action="store_true")
    args = parser.parse_args()
    extra: dict[str, Any] = {}
    if args.no_thinking:
        extra["chat_template_kwargs"] = {"enable_thinking": False}
    client = OpenAI(base_url=args.base_url, api_key=args.api_key)
    answer, calls = agent(
        client, args.model, args.question, args.max_turns, not args.no_force_first, extra
    )
    print(f"tools called: {calls}\nanswer: {answer}")


if __name__ == "__main__":
    main()
