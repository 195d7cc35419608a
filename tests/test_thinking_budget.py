"""The thinking-budget processor on CPU tensors, step by step, as SGLang calls it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoTokenizer

from omni_sglang_nemotron.plugin import NemotronThinkingBudgetPlugin

pytestmark = pytest.mark.sglang
THINKING_PROMPT = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n"


class FakeReq:
    def __init__(self, prompt_ids: list[int]):
        self.origin_input_ids = prompt_ids
        self.output_ids: list[int] = []


@pytest.fixture(scope="module")
def tok(tiny_model_path: Path) -> Any:
    return AutoTokenizer.from_pretrained(str(tiny_model_path))


@pytest.fixture(scope="module")
def plugin() -> NemotronThinkingBudgetPlugin:
    return NemotronThinkingBudgetPlugin()


def run(
    plugin: NemotronThinkingBudgetPlugin,
    tok: Any,
    model_says: list[int],
    budget: int,
    grace: int,
    steps: int,
) -> list[int]:
    """Generate ``steps`` tokens; the 'model' prefers ``model_says`` (cycled)."""
    params = plugin.custom_params(
        {"thinking_token_budget": budget, "grace_tokens": grace, "prompt": THINKING_PROMPT}, tok
    )
    assert params is not None
    req = FakeReq(tok(THINKING_PROMPT).input_ids)
    params["__req__"] = req
    processor = plugin.processor_class()()
    for step in range(steps):
        logits = torch.zeros(1, len(tok))
        logits[0, model_says[step % len(model_says)]] = 10.0
        logits = processor(logits, [params])
        req.output_ids.append(int(torch.argmax(logits[0])))
    return req.output_ids


def ids(tok: Any, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False).input_ids)


@pytest.mark.parametrize("budget", [0, 1, 7, 100])
def test_hard_budget_forces_exactly_the_end_sequence(plugin: Any, tok: Any, budget: int) -> None:
    word = ids(tok, " the")[0]
    out = run(plugin, tok, [word], budget, grace=0, steps=budget + 10)
    end = ids(tok, ".\n\n</think>") if budget else ids(tok, "</think>")
    assert out[:budget] == [word] * budget  # free until the budget
    assert out[budget : budget + len(end)] == end  # then exactly the end sequence
    assert out[budget + len(end) :] == [word] * (10 - len(end))  # then free again


def test_grace_waits_for_the_end_of_the_line(plugin: Any, tok: Any) -> None:
    word, newline = ids(tok, " the")[0], ids(tok, "\n")[0]
    says = [word] * 12 + [newline] + [word] * 50
    out = run(plugin, tok, says, budget=5, grace=100, steps=30)
    end = ids(tok, ".\n\n</think>")
    assert out[:13] == says[:13]  # past the budget, up to and with the newline
    assert out[13 : 13 + len(end)] == end


def test_grace_runs_out(plugin: Any, tok: Any) -> None:
    word = ids(tok, " the")[0]
    out = run(plugin, tok, [word], budget=5, grace=8, steps=30)
    end = ids(tok, ".\n\n</think>")
    assert out[:13] == [word] * 13 and out[13 : 13 + len(end)] == end


def test_skips_what_the_output_already_ends_with(plugin: Any, tok: Any) -> None:
    dot, newline = ids(tok, ".")[0], ids(tok, "\n")[0]
    out = run(plugin, tok, [dot, newline], budget=4, grace=50, steps=12)
    # ". \n . \n" already ends the line; the forced sequence picks up after ".\n".
    assert tok.decode(out).count("</think>") == 1
    closing = out.index(ids(tok, "</think>")[0])
    assert tok.decode(out[:closing]).endswith(".\n\n") or tok.decode(out[:closing]).endswith(".\n")
    assert closing <= 4 + 3


def test_model_closing_itself_stops_the_processor(plugin: Any, tok: Any) -> None:
    word, close = ids(tok, " the")[0], ids(tok, "</think>")[0]
    out = run(plugin, tok, [word, word, close] + [word] * 40, budget=10, grace=0, steps=30)
    assert out.count(close) == 1  # never forced a second time


def test_tool_call_counts_as_closing(plugin: Any, tok: Any) -> None:
    word, call = ids(tok, " the")[0], ids(tok, "<tool_call>")[0]
    out = run(plugin, tok, [word, call] + [word] * 40, budget=5, grace=0, steps=30)
    assert ids(tok, "</think>")[0] not in out  # never forced inside the call


def test_thinking_off_or_no_budget_attaches_nothing(plugin: Any, tok: Any) -> None:
    off = "<|im_start|>assistant\n<think></think>"
    assert plugin.custom_params({"thinking_token_budget": 5, "prompt": off}, tok) is None
    assert (
        plugin.custom_params({"thinking_token_budget": None, "prompt": THINKING_PROMPT}, tok)
        is None
    )


def test_batch_rows_are_independent(plugin: Any, tok: Any) -> None:
    """Forced rows are written in one tensor operation; other rows are untouched."""
    processor = plugin.processor_class()()
    rows = []
    for budget, produced in ((2, 5), (50, 5), (None, 5)):
        req = FakeReq([1])
        req.output_ids = ids(tok, " the") * produced
        params = None
        if budget is not None:
            params = plugin.custom_params(
                {"thinking_token_budget": budget, "grace_tokens": 0, "prompt": THINKING_PROMPT},
                tok,
            )
            params["__req__"] = req
        rows.append(params)
    logits = torch.randn(3, len(tok))
    before = logits.clone()
    out = processor(logits, rows)
    assert torch.isinf(out[0]).sum() == len(tok) - 1  # row 0 forced
    assert torch.equal(out[1], before[1]) and torch.equal(out[2], before[2])
