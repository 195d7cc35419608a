r"""``response_format`` JSON schemas rewritten so that xgrammar (SGLang's grammar backend,
0.2.7 here, used by both engines) holds length-bounded JSON strings to what the text
shows.

xgrammar's schema converter writes a string with ``minLength`` / ``maxLength`` as
``[^"\\\r\n]{m,n}``, which admits (measured on the tiny tokenizer's byte tokens):

- raw control characters (U+0000-U+001F), which RFC 8259 forbids inside strings and
  ``json.loads`` refuses (the byte 0x18 token in a ``name`` with ``maxLength: 12``);
- byte sequences that are not UTF-8 (lead bytes C0, C1, F5-F7, surrogates, overlong
  forms: 2124 of 74880 short sequences), one character to the grammar and several U+FFFD
  in the text, so the text breaks ``maxLength``.

The same bound as a pattern over an explicit class, printable ASCII but ``"`` and ``\``
plus the code point ranges split where UTF-8's lead byte changes, compiles to exactly the
valid sequences (0 of the 74880 wrong). Neither form admits escape sequences (xgrammar's
bounded strings never did), so nothing a client could get before is lost; unbounded
strings keep xgrammar's own rule, escapes included. A string with a pattern and lengths
is left as it is: xgrammar cannot enforce both, and both engines refuse it with SGLang's
own check (``sglang_source.check_json_schema_as_sglang``).
"""

from __future__ import annotations

from typing import Any

from omni_sglang.sglang_source import json_subschema_keywords

#: Code points split where UTF-8's byte ranges change (after E0 and F0 a narrower second
#: byte, ED stops before the surrogates, F4 at U+10FFFF): xgrammar encodes each such
#: range exactly, a range across them loosely (measured, tests/test_json_schema_strings.py).
_UTF8_RANGES = (
    *((0x80, 0x7FF), (0x800, 0xFFF), (0x1000, 0xCFFF), (0xD000, 0xD7FF)),
    *((0xE000, 0xFFFF), (0x10000, 0x3FFFF), (0x40000, 0xFFFFF), (0x100000, 0x10FFFF)),
)
#: Every non-ASCII code point, as regex class ranges xgrammar compiles to valid UTF-8 only.
NON_ASCII_RANGES = "".join(f"{chr(a)}-{chr(b)}" for a, b in _UTF8_RANGES)
#: One character of a bounded string: what RFC 8259 allows unescaped, as valid UTF-8.
STRING_CHAR = "[ !#-\\[\\]-\x7f" + NON_ASCII_RANGES + "]"


def is_plain_bounded_string(schema: dict[str, Any]) -> bool:
    """A string with minLength / maxLength and nothing else that shapes it."""
    kind = schema.get("type")
    is_string = kind == "string" or (isinstance(kind, list) and kind == ["string"])
    bounded = "minLength" in schema or "maxLength" in schema
    shaped = any(k in schema for k in ("pattern", "format", "enum", "const"))
    return is_string and bounded and not shaped


def _length_pattern(schema: dict[str, Any]) -> str:
    low = int(schema.get("minLength", 0))
    high = schema.get("maxLength")
    return f"^{STRING_CHAR}{{{low},{'' if high is None else int(high)}}}$"


def with_valid_json_strings(schema: Any) -> Any:
    """A copy of ``schema`` in which every length-bounded string without a pattern,
    format, enum or const has its bound as the equivalent pattern instead."""
    if not isinstance(schema, dict):
        return schema  # true / false schemas
    single, lists, maps = json_subschema_keywords()
    out = dict(schema)
    for key, value in schema.items():
        if key in maps and isinstance(value, dict):
            out[key] = {name: with_valid_json_strings(sub) for name, sub in value.items()}
        elif (key in lists or key in single) and isinstance(value, list):  # draft 7's items
            out[key] = [with_valid_json_strings(sub) for sub in value]
        elif key in single:
            out[key] = with_valid_json_strings(value)
    if is_plain_bounded_string(out):
        # The pattern holds the bound; SGLang refuses a pattern beside minLength/maxLength
        # (xgrammar cannot enforce both) and so does the cpu engine.
        out["pattern"] = _length_pattern(out)
        out.pop("minLength", None)
        out.pop("maxLength", None)
    return out
