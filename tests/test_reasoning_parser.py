"""The nemotron_v3 reasoning parser: the same split for every way the text is chunked."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omni_sglang.plugin_api import ReasoningSplit
from omni_sglang_nemotron.plugin import NemotronV3ReasoningPlugin
from omni_sglang_nemotron.reasoning import NemotronV3ReasoningParser, prompt_opens_thinking
from tests.reasoning_corpus import CORPUS

EXPECTED = {
    "plain": ("Let me think.\nTwo plus two is four.\n", "\nThe answer is 4."),
    "no newline": ("short", "answer"),
    "empty reasoning": ("", "Just the answer."),
    "empty answer": ("Thinking only.", ""),
    "truncated": ("I was thinking about this and then ran out of tok", ""),
    "partial end tag": ("Thinking and then </thi", ""),
    "angle brackets": ("a < b and b > c, so </ is not ", "a<b>c</b>"),
    "end tag twice": ("r", "c1</think>c2"),
    "tool call in reasoning": (
        "Maybe <tool_call>\n<function=f>\n</function>\n</tool_call> no.",
        "Done.",
    ),
    "tool call after reasoning": (
        "Need weather.",
        "\n<tool_call>\n<function=get>\n"
        "<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>",
    ),
    "forced close": ("budget reached.\n\n", "\n\nFinal."),
    "unicode": ("Ünïcødé 你好 ✓", "答案 ✓"),
    "thinking off": ("", "The answer is 4."),
    "thinking off, tags in text": ("", "Use </think> to close and <think> to open."),
    "thinking off, self opened": ("I will think anyway.", "Answer."),
    "thinking off, self opened after space": ("x", "\ny"),
    "thinking off, empty": ("", ""),
    "thinking on, empty": ("", ""),
}


def streamed(thinking: bool, chunks: list[str]) -> tuple[str, str]:
    parser = NemotronV3ReasoningParser(thinking)
    parts = [parser.feed(c) for c in chunks] + [parser.finish()]
    return "".join(p.reasoning for p in parts), "".join(p.content for p in parts)


@pytest.mark.parametrize(("name", "thinking", "text"), CORPUS, ids=[c[0] for c in CORPUS])
def test_whole_text_split(name: str, thinking: bool, text: str) -> None:
    split = NemotronV3ReasoningParser(thinking).parse(text)
    assert (split.reasoning, split.content) == EXPECTED[name]


@pytest.mark.parametrize(("name", "thinking", "text"), CORPUS, ids=[c[0] for c in CORPUS])
def test_every_single_and_double_cut(name: str, thinking: bool, text: str) -> None:
    whole = EXPECTED[name]
    for cut in range(len(text) + 1):
        assert streamed(thinking, [text[:cut], text[cut:]]) == whole, cut
    for a, b in itertools.combinations(range(len(text) + 1), 2):
        assert streamed(thinking, [text[:a], text[a:b], text[b:]]) == whole, (a, b)
    assert streamed(thinking, list(text)) == whole  # one character at a time


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_random_chunkings(data: st.DataObject) -> None:
    name, thinking, text = data.draw(st.sampled_from(CORPUS))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=12)))
    bounds = [0, *cuts, len(text)]
    chunks = [text[a:b] for a, b in itertools.pairwise(bounds)]
    assert streamed(thinking, chunks) == EXPECTED[name]


def test_held_text_stays_bounded() -> None:
    """Linear time: the parser never re-scans more than a tag's length per chunk."""
    parser = NemotronV3ReasoningParser(True)
    total = ReasoningSplit()
    for _ in range(20000):
        out = parser.feed("x<")
        total.reasoning += out.reasoning
        assert len(parser._held) < len("</think>")
    assert len(total.reasoning) >= 39999


def test_prompt_decides_the_mode() -> None:
    assert prompt_opens_thinking("<|im_start|>assistant\n<think>\n")
    assert not prompt_opens_thinking("<|im_start|>assistant\n<think></think>")
    assert not prompt_opens_thinking("no tags at all")
    plugin = NemotronV3ReasoningPlugin()
    assert plugin.create(prompt="x<think>\n").in_reasoning
    assert not plugin.create(prompt="x<think></think>").in_reasoning
    assert plugin.sampling_defaults("x<think>\n") == {"temperature": 0.6, "top_p": 0.95}
    assert plugin.sampling_defaults("x<think></think>") == {"temperature": 0.2, "top_k": 1}
