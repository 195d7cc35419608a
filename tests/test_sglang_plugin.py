"""Our ``sglang.srt.plugins`` entry point: SGLang's own ``load_plugins()`` registers the
Nemotron reasoning parser and multimodal processor (surviving SGLang's own processor
import), honours ``SGLANG_PLUGINS``, and SGLang's ``ReasoningParser``
then parses exactly as our parser does."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from omni_sglang_nemotron.reasoning import NemotronV3ReasoningParser
from tests.reasoning_corpus import CORPUS

pytestmark = pytest.mark.sglang
KEY = "omni_nemotron_v3"
ENTRY_POINT = "omni_nemotron"


def test_load_plugins_registers_in_a_fresh_sglang_process() -> None:
    """As in SGLang's spawned scheduler / detokenizer: nothing but load_plugins()."""
    script = textwrap.dedent(
        f"""
        from sglang.srt.plugins import load_plugins
        from sglang.srt.parser.reasoning_parser import ReasoningParser
        assert {KEY!r} not in ReasoningParser.DetectorMap
        load_plugins()
        parser = ReasoningParser({KEY!r}, stream_reasoning=True, force_reasoning=True)
        # As SGLang's TokenizerManager does after plugins load: our processor stays.
        from sglang.srt.managers import multimodal_processor as mp
        mp.import_processors("sglang.srt.multimodal.processors")
        from sglang.srt.multimodal.evs.evs_module import EVS
        from sglang.srt.models.nano_nemotron_vl import NemotronH_Nano_Omni_Reasoning_V3
        print(mp.PROCESSOR_MAPPING[NemotronH_Nano_Omni_Reasoning_V3].__name__)
        print(EVS.evs_video.__wrapped__.__qualname__)
        from sglang.srt.function_call.function_call_parser import FunctionCallParser
        assert "omni_qwen3_coder" in FunctionCallParser.ToolCallParserEnum
        print(parser.parse_non_stream("plan</think>answer"))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "SGLANG_PLUGINS"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    processor, evs_video, parsed = result.stdout.strip().splitlines()[-3:]
    assert processor == "OmniNanoNemotronVLProcessor"
    assert evs_video == "EVS.evs_video"  # wrapped by our per-item-rate hook
    assert parsed == "('plan', 'answer')"


@pytest.fixture
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """load_plugins() runs once per process; forget that (and our registration) so the
    allow-list can be exercised here, and leave the registration in place afterwards."""
    import sglang.srt.plugins as plugins
    from sglang.srt.parser.reasoning_parser import ReasoningParser

    def reset() -> None:
        monkeypatch.setattr(plugins, "_plugins_loaded", False)
        ReasoningParser.DetectorMap.pop(KEY, None)

    yield reset
    from omni_sglang_nemotron.sglang_plugin import register_reasoning_parsers

    register_reasoning_parsers()


def test_allow_list_is_honoured(fresh_plugins: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import sglang.srt.plugins as plugins
    from sglang.srt.parser.reasoning_parser import ReasoningParser

    monkeypatch.setenv("SGLANG_PLUGINS", "someone-else")
    fresh_plugins()
    plugins.load_plugins()
    assert KEY not in ReasoningParser.DetectorMap
    monkeypatch.setenv("SGLANG_PLUGINS", ENTRY_POINT)
    fresh_plugins()
    plugins.load_plugins()
    assert KEY in ReasoningParser.DetectorMap


@pytest.fixture(scope="module")
def sglang_parser() -> Any:
    from sglang.srt.parser.reasoning_parser import ReasoningParser

    from omni_sglang_nemotron.sglang_plugin import register

    register()
    return ReasoningParser


def chunkings(text: str) -> list[list[str]]:
    """Whole, one character at a time, and in pieces of 3 (tags split across chunks)."""
    return [[text], list(text), [text[i : i + 3] for i in range(0, len(text), 3)]]


@pytest.mark.parametrize(("name", "thinking", "text"), CORPUS, ids=[c[0] for c in CORPUS])
def test_sglang_interface_parses_as_our_parser(
    sglang_parser: Any, name: str, thinking: bool, text: str
) -> None:
    expected = NemotronV3ReasoningParser(thinking=thinking).parse(text)
    want = (expected.reasoning, expected.content)
    for chunks in chunkings(text):
        parser = sglang_parser(KEY, stream_reasoning=True, force_reasoning=thinking)
        reasoning, content = "", ""
        for piece in chunks:
            r, c = parser.parse_stream_chunk(piece)
            reasoning, content = reasoning + (r or ""), content + (c or "")
        r, c = parser.parse_stream_end()
        assert (reasoning + (r or ""), content + (c or "")) == want, chunks
    assert sglang_parser(KEY, force_reasoning=thinking).parse_non_stream(text) == want


def test_thinking_off_and_self_opened(sglang_parser: Any) -> None:
    off = sglang_parser(KEY, force_reasoning=False)
    assert off.parse_non_stream("plain answer") == ("", "plain answer")
    opened = sglang_parser(KEY, force_reasoning=False)
    assert opened.parse_non_stream("<think>hmm</think>yes") == ("hmm", "yes")


def test_reasoning_held_until_closed_when_not_streamed(sglang_parser: Any) -> None:
    parser = sglang_parser(KEY, stream_reasoning=False, force_reasoning=True)
    assert parser.parse_stream_chunk("step one, ") == ("", "")
    assert parser.parse_stream_chunk("step two</think>ok") == ("step one, step two", "ok")
    unfinished = sglang_parser(KEY, stream_reasoning=False, force_reasoning=True)
    unfinished.parse_stream_chunk("cut short")
    assert unfinished.parse_stream_end() == ("cut short", "")


def test_scheduler_facing_interface(sglang_parser: Any, tiny_model_path: Path) -> None:
    """What SGLang's scheduler reads: the end-of-reasoning token ids for its grammar
    gating, built as the scheduler builds it (stream_reasoning off, a tokenizer)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_path))
    parser = sglang_parser(KEY, stream_reasoning=False, tokenizer=tokenizer)
    think_end = tokenizer("</think>", add_special_tokens=False).input_ids
    assert parser.detector.get_think_end_token_ids(tokenizer) == think_end
    assert parser.detector.reasoning_default == "enable_thinking"
    assert parser.detector.think_start_token == "<think>"
