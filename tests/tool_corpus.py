"""Model outputs for the tool parsers: (name, text, expected content, expected calls)."""

from __future__ import annotations

from typing import Any

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer"},
                    "metric": {"type": "boolean"},
                    "ratio": {"type": "number"},
                    "opts": {"type": "object"},
                    "tags": {"type": "array"},
                    "note": {"type": ["string", "null"]},
                },
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
        },
    },
]


def call(name: str, **params: str) -> str:
    body = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in params.items())
    return f"<tool_call>\n<function={name}>\n{body}</function>\n</tool_call>"


CORPUS: list[tuple[str, str, str, list[tuple[str, dict[str, Any]]]]] = [
    ("one call", call("get_weather", city="Paris"), "", [("get_weather", {"city": "Paris"})]),
    (
        "typed",
        call(
            "get_weather",
            city="Paris",
            days="3",
            metric="true",
            ratio="0.5",
            opts='{"a": [1, 2]}',
            tags='["x", "y"]',
            note="null",
        ),
        "",
        [
            (
                "get_weather",
                {
                    "city": "Paris",
                    "days": 3,
                    "metric": True,
                    "ratio": 0.5,
                    "opts": {"a": [1, 2]},
                    "tags": ["x", "y"],
                    "note": None,
                },
            )
        ],
    ),
    (
        "multi-line string",
        call("get_weather", city="New\nYork\n"),
        "",
        [("get_weather", {"city": "New\nYork\n"})],
    ),
    (
        "type mismatch stays text",
        call("get_weather", city="Rome", days="three"),
        "",
        [("get_weather", {"city": "Rome", "days": "three"})],
    ),
    (
        "content then call",
        "Let me check.\n" + call("get_time", zone="UTC"),
        "Let me check.\n",
        [("get_time", {"zone": "UTC"})],
    ),
    (
        "parallel",
        call("get_weather", city="Oslo") + "\n" + call("get_time", zone="CET"),
        "",
        [("get_weather", {"city": "Oslo"}), ("get_time", {"zone": "CET"})],
    ),
    ("no params", call("get_time"), "", [("get_time", {})]),
    (
        "unknown function",
        call("launch_rockets", n="3") + " ok",
        call("launch_rockets", n="3") + " ok",
        [],
    ),
    (
        "malformed header",
        "<tool_call>\nnot a function\n</tool_call>",
        "<tool_call>\nnot a function\n</tool_call>",
        [],
    ),
    ("plain text", "No tools needed: 4.", "No tools needed: 4.", []),
    ("angle brackets", "a <b> c <tool d", "a <b> c <tool d", []),
    (
        "truncated call",
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nPar",
        "",
        [("get_weather", {"city": "Par"})],
    ),
    (
        "text after call",
        call("get_time", zone="UTC") + "\nDone.",
        "Done.",
        [("get_time", {"zone": "UTC"})],
    ),
]
