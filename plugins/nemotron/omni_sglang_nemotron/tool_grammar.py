"""An EBNF grammar (xgrammar / SGLang ``ebnf``) that admits only well-formed tool calls in
Nemotron's qwen3-coder format, for ``tool_choice`` "required" or a named function.

Required parameters come first in schema order, then optional ones in any order; values
follow their JSON-schema type (strings: any text without '<', so the closing tag is
unambiguous).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

_VALUES = {
    "integer": 'value_integer ::= "-"? [0-9]+',
    "number": 'value_number ::= "-"? [0-9]+ ("." [0-9]+)? ([eE] [-+]? [0-9]+)?',
    "boolean": 'value_boolean ::= "true" | "false"',
    "null": 'value_null ::= "null"',
    "string": "value_string ::= [^<]*",
}


def _lit(text: str) -> str:
    return json.dumps(text)  # EBNF string literals take JSON's escapes


def _value_rule(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    return f"value_{kind}" if isinstance(kind, str) and kind in _VALUES else "value_string"


def tool_call_ebnf(
    tools: Sequence[Mapping[str, Any]], *, function: str | None, parallel: bool
) -> str:
    rules: list[str] = []
    functions: list[str] = []
    for i, tool in enumerate(tools):
        fn = tool.get("function", tool)
        if function is not None and fn["name"] != function:
            continue
        params = (fn.get("parameters") or {}).get("properties") or {}
        required = [p for p in (fn.get("parameters") or {}).get("required") or [] if p in params]
        optional = [p for p in params if p not in required]
        parts = []
        for j, name in enumerate(list(required) + optional):
            rule = f"p{i}_{j}"
            rules.append(
                f"{rule} ::= {_lit(f'<parameter={name}>' + chr(10))} "
                f"{_value_rule(params[name])} {_lit(chr(10) + '</parameter>' + chr(10))}"
            )
            parts.append(rule)
        body = " ".join(parts[: len(required)])
        if optional:
            rules.append(f"opt{i} ::= " + " | ".join(parts[len(required) :]))
            body += f" opt{i}*"
        rules.append(
            f"f{i} ::= {_lit('<function=' + fn['name'] + '>' + chr(10))} {body} "
            f"{_lit('</function>' + chr(10))}"
        )
        functions.append(f"f{i}")
    if not functions:
        raise ValueError(f"no tool named {function!r}")
    call = (
        f"call ::= {_lit('<tool_call>' + chr(10))} ({' | '.join(functions)}) {_lit('</tool_call>')}"
    )
    root = 'root ::= call ("\\n" call)*' if parallel and function is None else "root ::= call"
    return "\n".join([root, call, *rules, *_VALUES.values()])
