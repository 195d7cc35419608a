r"""Tool parameter schemas rewritten so that xgrammar's qwen3-coder call grammar holds a
length-bounded string parameter to what the tool parser reads back.

A top-level parameter's string is raw text between ``<parameter=NAME>`` and
``</parameter>``. xgrammar (0.2.7) writes one with ``minLength`` / ``maxLength`` as
``[\0-\U0010ffff]{m,n}`` between optional layout whitespace, which admits:

- byte sequences that are not UTF-8, one character to the grammar and one or more
  U+FFFD in the text, so the text breaks ``maxLength`` (as for JSON strings,
  ``omni_sglang.adapter.json_schema_strings``);
- ``</parameter>`` itself inside the value, where the parser ends it;
- whitespace at the value's edges, which the parser cannot tell from the layout it strips
  (one whitespace character after ``<parameter=NAME>`` and one before ``</parameter>``,
  as the chat template writes them): ``"\n\n"`` is read back as ``""`` and breaks
  ``minLength: 1``.

The same bound as a pattern over valid UTF-8 without ``<`` and without whitespace at either
edge is read back exactly. What it gives up (a ``<``, or edge whitespace, in a bounded raw
string) is rare in parameters that carry a length bound. Nested objects and arrays are
JSON inside the parameter: their strings get the JSON rewrite.
"""

from __future__ import annotations

from typing import Any

from omni_sglang.adapter.json_schema_strings import (
    NON_ASCII_RANGES,
    is_plain_bounded_string,
    with_valid_json_strings,
)

#: Any character of a raw parameter string: tab, newline, CR, printable ASCII but ``<``,
#: every valid UTF-8 code point beyond.
RAW_CHAR = "[\\t\\n\\r -;=-~" + NON_ASCII_RANGES + "]"
#: A character at either edge: not whitespace the parser would take for layout.
EDGE_CHAR = "[!-;=-~" + NON_ASCII_RANGES + "]"


def raw_length_pattern(low: int, high: int | None) -> str:
    """A regex for ``low``..``high`` characters (no upper bound if None) of raw parameter
    text that starts and ends with an :data:`EDGE_CHAR`."""
    if high is not None and high < max(low, 0):
        high = low  # an empty range; xgrammar rejects the schema on its own terms
    if high == 0:
        return "^$"
    inner_low = max(low - 2, 0)
    inner_high = "" if high is None else str(max(high - 2, 0))
    longer = f"{RAW_CHAR}{{{inner_low},{inner_high}}}{EDGE_CHAR}"
    if high == 1:
        body = EDGE_CHAR
    elif low >= 2:
        body = EDGE_CHAR + longer
    else:  # one character, or two and more
        body = f"{EDGE_CHAR}({longer})?"
    return f"^({body})?$" if low <= 0 else f"^{body}$"


def _raw_string(schema: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in schema.items() if k not in ("minLength", "maxLength")}
    high = schema.get("maxLength")
    out["pattern"] = raw_length_pattern(
        int(schema.get("minLength", 0)), None if high is None else int(high)
    )
    return out


def with_exact_strings(parameters: Any) -> Any:
    """A copy of a tool's ``parameters`` schema whose bounded top-level strings are raw
    patterns the parser reads back exactly, and whose nested strings are valid JSON."""
    if not isinstance(parameters, dict) or not isinstance(parameters.get("properties"), dict):
        return with_valid_json_strings(parameters)
    properties = {}
    for name, schema in parameters["properties"].items():
        if isinstance(schema, dict) and is_plain_bounded_string(schema):
            properties[name] = _raw_string(schema)
        else:
            properties[name] = with_valid_json_strings(schema)
    rest = with_valid_json_strings({k: v for k, v in parameters.items() if k != "properties"})
    return {**rest, "properties": properties}
