"""Length-bounded JSON strings as xgrammar compiles them (issue 13, part 2): its schema
converter admits raw control characters inside them; the rewritten schema does not, and
still holds the bound. On the tiny tokenizer, whose byte tokens 0x00-0x1f exist."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from omni_sglang.adapter.json_schema_strings import STRING_CHAR, with_valid_json_strings

NAME = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 12}},
    "required": ["name"],
}


@pytest.fixture(scope="module")
def compiler(tiny_model_path: Path) -> Any:
    import xgrammar as xgr
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer))
    control = [i for i, raw in enumerate(info.decoded_vocab) if raw and max(raw) < 0x20]
    assert len(control) >= 30  # the byte tokens this test is about
    return xgr.GrammarCompiler(info), control, info.vocab_size, info.decoded_vocab


def allowed_after(compiler: Any, schema: dict[str, Any], prefix: str) -> set[int]:
    import xgrammar as xgr

    grammar_compiler, _, vocab_size, _ = compiler
    matcher = xgr.GrammarMatcher(
        grammar_compiler.compile_json_schema(json.dumps(schema), any_whitespace=False)
    )
    assert matcher.accept_string(prefix), prefix
    mask = xgr.allocate_token_bitmask(1, vocab_size)
    matcher.fill_next_token_bitmask(mask)
    words = mask[0].tolist()
    return {i for i in range(32 * len(words)) if (words[i // 32] >> (i % 32)) & 1}


def test_xgrammar_admits_control_characters_in_bounded_strings(compiler: Any) -> None:
    """The cause, measured: if a later xgrammar fixes it, this fails and the rewrite
    can go."""
    control = compiler[1]
    assert set(control) & allowed_after(compiler, NAME, '{"name": "x')


def accepted_byte_strings(compiler: Any, schema: dict[str, Any]) -> list[bytes]:
    """Every string of one non-ASCII lead byte and up to three bytes after it (from the
    edges of the continuation range and beyond) that the grammar takes as a whole
    string value."""
    import xgrammar as xgr

    grammar_compiler = compiler[0]
    compiled = grammar_compiler.compile_json_schema(json.dumps(schema), any_whitespace=False)
    byte_token = {raw[0]: i for i, raw in enumerate(compiler[3]) if len(raw) == 1}
    edges = (0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0)
    out = []
    for lead in range(0x80, 0x100):
        for n in range(4):
            for tail in itertools.product(edges, repeat=n):
                raw = bytes([lead, *tail])
                matcher = xgr.GrammarMatcher(compiled, terminate_without_stop_token=True)
                matcher.accept_string('"')
                if all(matcher.accept_token(byte_token[b]) for b in raw) and (
                    matcher.accept_string('"')
                ):
                    out.append(raw)
    return out


def is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_bounded_strings_take_exactly_the_valid_utf8(compiler: Any) -> None:
    """xgrammar's own bounded string takes byte strings that are not UTF-8 (the text then
    shows several U+FFFD for what the grammar counted as one character); the rewritten one
    takes the valid ones, all of them, and nothing else."""
    bounded = {"type": "string", "maxLength": 8}
    loose = accepted_byte_strings(compiler, bounded)
    assert any(not is_utf8(raw) for raw in loose)
    exact = accepted_byte_strings(compiler, with_valid_json_strings(bounded))
    assert all(is_utf8(raw) for raw in exact)
    assert set(exact) == {raw for raw in loose if is_utf8(raw) and min(raw) >= 0x20}


def test_the_rewritten_schema_admits_none_and_keeps_the_bound(compiler: Any) -> None:
    control = compiler[1]
    fixed = with_valid_json_strings(NAME)
    assert not set(control) & allowed_after(compiler, fixed, '{"name": "x')
    import xgrammar as xgr

    compiled = compiler[0].compile_json_schema(json.dumps(fixed), any_whitespace=False)

    def accepts(text: str) -> bool:
        matcher = xgr.GrammarMatcher(compiled, terminate_without_stop_token=True)
        return bool(matcher.accept_string(text)) and matcher.is_terminated()

    assert accepts('{"name": "' + "é" * 12 + '"}')
    assert not accepts('{"name": "' + "a" * 13 + '"}')


def test_every_kind_of_subschema_is_rewritten_and_nothing_else() -> None:
    bounded = {"type": "string", "minLength": 2, "maxLength": 5}
    schema = {
        "type": "object",
        "properties": {
            "type": bounded,  # property names that are also keywords
            "enum": {"type": "array", "items": bounded, "prefixItems": [bounded]},
            "pick": {"anyOf": [bounded, {"type": "integer"}]},
            "kept": {"type": "string", "maxLength": 4, "pattern": "^[a-z]+$"},
            "mail": {"type": "string", "maxLength": 40, "format": "email"},
            "free": {"type": "string"},
        },
        "additionalProperties": bounded,
        "$defs": {"d": {"type": "string", "minLength": 1}},
        "default": {"type": "string", "maxLength": 1},  # data: left alone
    }
    out = with_valid_json_strings(schema)
    want = "^" + STRING_CHAR + "{2,5}$"
    props = out["properties"]
    assert props["type"] == {"type": "string", "pattern": want}  # the bound is the pattern
    assert props["enum"]["items"]["pattern"] == props["enum"]["prefixItems"][0]["pattern"] == want
    assert (
        props["pick"]["anyOf"][0]["pattern"] == want and "pattern" not in props["pick"]["anyOf"][1]
    )
    assert props["kept"]["pattern"] == "^[a-z]+$" and "pattern" not in props["mail"]
    assert "pattern" not in props["free"] and out["additionalProperties"]["pattern"] == want
    assert out["$defs"]["d"]["pattern"] == "^" + STRING_CHAR + "{1,}$"
    assert out["default"] == {"type": "string", "maxLength": 1}
    assert schema["properties"]["type"] == bounded and "pattern" not in bounded  # a copy
