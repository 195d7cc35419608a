"""Incremental detokenization and stop strings: chunks in, the same text out."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from omni_sglang.engines.cpu.text import IncrementalDetokenizer, StopStringMatcher


def test_incremental_decode_equals_full_decode(tiny_model_path: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(tiny_model_path))
    text = "Héllo wörld — 你好, <think>\nreason</think> done ✓ 3.14"
    ids = tok(text, add_special_tokens=False).input_ids
    detok = IncrementalDetokenizer(tok, skip_special_tokens=True)
    pieces = [detok.push(i) for i in ids] + [detok.flush()]
    assert "".join(pieces) == tok.decode(ids) == text
    # A multi-byte character split over byte tokens is never emitted half-done.
    assert all("\ufffd" not in p for p in pieces)


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="abc\n", max_size=30),
    stops=st.lists(st.text(alphabet="abc\n", min_size=1, max_size=4), min_size=1, max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=30), max_size=8),
)
def test_stop_matcher_any_chunking(text: str, stops: list[str], cuts: list[int]) -> None:
    bounds = sorted({0, len(text), *[c for c in cuts if c <= len(text)]})
    chunks = [text[a:b] for a, b in itertools.pairwise(bounds)]
    matcher = StopStringMatcher(stops)
    emitted, matched = "", None
    for chunk in chunks:
        out, matched = matcher.push(chunk)
        emitted += out
        if matched:
            break
    if not matched:
        emitted += matcher.flush()
    # As in SGLang, the first stop to complete wins (with overlapping stops that can
    # depend on the chunking); either way nothing after it is emitted, nothing before
    # it is lost, and text with no stop passes whole.
    if not any(stop in text for stop in stops):
        assert (emitted, matched) == (text, None)
    else:
        assert matched is not None
        assert text.startswith(emitted + matched)
        assert matched not in emitted


def test_stop_matcher_keeps_stop_when_asked() -> None:
    matcher = StopStringMatcher(["END"], keep_stop=True)
    assert matcher.push("abcE") == ("abc", None)
    assert matcher.push("ND tail") == ("END", "END")
