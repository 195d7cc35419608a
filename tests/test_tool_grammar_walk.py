"""The tool-call grammar and the tool-call parser agree (issue 13, part 4): random walks
through xgrammar's matcher for our structural tag, on the tiny tokenizer's whole
vocabulary (byte tokens, specials, ``<tool_call>``), each one a call that the parser must
turn into exactly the values the text holds, typed, and valid against the schema.

Walks, not a model: every token the grammar admits is as likely as any other, so the
odd corners (lone UTF-8 lead bytes, whitespace at a value's edge, ``<`` in a string)
come up within a few hundred calls, where a random model would need thousands."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from omni_sglang.engines.grammar_tokens import grammar_tokenizer_info
from omni_sglang_nemotron.tool_grammar import tool_call_structural_tag
from omni_sglang_nemotron.tool_parser import Qwen3CoderToolParser
from tests.test_tool_schema import SCHEMAS, TOOLS

WALKS = 150
MAX_STEPS = 800
CALL_START_TOKEN = "<tool_call>"
_CALL = re.compile(r"<tool_call>\n<function=(\w+)>\n(.*)\n</function>\n</tool_call>$", re.S)
_PARAM = re.compile(r"<parameter=(\w+)>(.*?)</parameter>", re.S)


@pytest.fixture(scope="module")
def walker(tiny_model_path: Path) -> Any:
    import xgrammar as xgr
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    info = grammar_tokenizer_info(tokenizer, vocab_size=len(tokenizer), stop_token_ids=[eos])
    return tokenizer, xgr.GrammarCompiler(info), eos


def walk(walker: Any, choice: str, rng: random.Random, free_steps: int) -> str | None:
    """One random path through the grammar: ``free_steps`` tokens of free text (auto),
    then, for auto, ``<tool_call>``; None if it did not end within MAX_STEPS."""
    import xgrammar as xgr

    tokenizer, compiler, eos = walker
    compiled = compiler.compile_structural_tag(
        tool_call_structural_tag(
            TOOLS,
            function="book" if choice == "book" else None,
            auto=choice == "auto",
            parallel=False,
        )
    )
    matcher = xgr.GrammarMatcher(compiled)
    mask = xgr.allocate_token_bitmask(1, compiled.tokenizer_info.vocab_size)
    call_start = tokenizer.convert_tokens_to_ids(CALL_START_TOKEN)
    out: list[int] = []
    for step in range(MAX_STEPS):
        matcher.fill_next_token_bitmask(mask)
        words = mask[0].tolist()
        allowed = [i for i in range(len(tokenizer)) if (words[i // 32] >> (i % 32)) & 1]
        if choice == "auto" and step == free_steps:
            assert call_start in allowed, "free text can always open a call"
            token = call_start
        else:
            in_call = choice != "auto" or step > free_steps
            candidates = [i for i in allowed if i != eos and (i != call_start or in_call)]
            if eos in allowed and in_call and (not candidates or rng.random() < 0.3):
                return tokenizer.decode(out, skip_special_tokens=True)
            token = rng.choice(candidates)
        assert matcher.accept_token(token)
        out.append(token)
    return None


def values_in(text: str) -> tuple[str, dict[str, Any]]:
    """The call the text holds, read independently of the parser: a string is the
    text between the tags without the layout whitespace the grammar allows around it
    (the grammar keeps whitespace off a bounded string's edges), anything else JSON."""
    match = _CALL.search(text)
    assert match, text
    name, body = match.groups()
    properties = SCHEMAS[name]["properties"]
    values: dict[str, Any] = {}
    for key, raw in _PARAM.findall(body):
        values[key] = raw.strip() if properties[key]["type"] == "string" else json.loads(raw)
    return name, values


@pytest.mark.parametrize("choice", ["required", "book", "auto"])
def test_parser_reads_back_what_the_grammar_wrote(walker: Any, choice: str) -> None:
    rng = random.Random(f"walk-{choice}")
    done = 0
    for n in range(WALKS):
        free = rng.randrange(0, 6)
        text = walk(walker, choice, rng, free)
        if text is None:
            continue
        done += 1
        name, values = values_in(text)
        result = Qwen3CoderToolParser(TOOLS, parallel=False).parse(text)
        assert [c.name for c in result.calls] == [name], (n, text)
        arguments = json.loads(result.calls[0].arguments)
        assert arguments == values, (n, text)
        # == alone takes True for 1 and 1 for 1.0: the types must match too.
        assert [type(v) for v in arguments.values()] == [type(v) for v in values.values()]
        jsonschema.validate(arguments, SCHEMAS[name])
        if choice == "auto":
            assert text.index(CALL_START_TOKEN) == len(result.content), (n, text)
    assert done >= WALKS * 0.9  # nearly every walk ends: the limits are the grammar's
