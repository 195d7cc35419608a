"""The qwen3_coder tool parser: typed calls, and the same result for every chunking."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omni_sglang_nemotron.tool_parser import Qwen3CoderToolParser
from tests.tool_corpus import CORPUS, TOOLS


def streamed(text: str, chunks: list[str], parallel: bool = True) -> tuple[str, list[Any]]:
    parser = Qwen3CoderToolParser(TOOLS, parallel=parallel)
    steps = [parser.feed(c) for c in chunks] + [parser.finish()]
    calls: dict[int, dict[str, str]] = {}
    for step in steps:
        for delta in step.calls:
            entry = calls.setdefault(delta.index, {"name": "", "arguments": ""})
            if delta.name is not None:
                assert not entry["name"], "a call's name is sent once"
                entry["name"] = delta.name
            else:
                assert entry["name"], "the name comes before any argument text"
            entry["arguments"] += delta.arguments
    content = "".join(s.content for s in steps)
    return content, [(c["name"], json.loads(c["arguments"])) for _, c in sorted(calls.items())]


@pytest.mark.parametrize(("name", "text", "content", "calls"), CORPUS, ids=[c[0] for c in CORPUS])
def test_whole_text(name: str, text: str, content: str, calls: list[Any]) -> None:
    result = Qwen3CoderToolParser(TOOLS).parse(text)
    assert result.content == content
    assert [(c.name, json.loads(c.arguments)) for c in result.calls] == calls


@pytest.mark.parametrize(("name", "text", "content", "calls"), CORPUS, ids=[c[0] for c in CORPUS])
def test_every_cut(name: str, text: str, content: str, calls: list[Any]) -> None:
    for cut in range(len(text) + 1):
        assert streamed(text, [text[:cut], text[cut:]]) == (content, calls), cut
    assert streamed(text, list(text)) == (content, calls)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_chunkings(data: st.DataObject) -> None:
    _, text, content, calls = data.draw(st.sampled_from(CORPUS))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=10)))
    chunks = [text[a:b] for a, b in itertools.pairwise([0, *cuts, len(text)])]
    assert streamed(text, chunks) == (content, calls)


def test_parallel_false_keeps_only_the_first_call() -> None:
    text = dict((c[0], c[1]) for c in CORPUS)["parallel"]
    content, calls = streamed(text, list(text), parallel=False)
    assert [c[0] for c in calls] == ["get_weather"]
    assert "<function=get_time>" in content  # the second call is returned as text
