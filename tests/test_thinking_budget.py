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
    grace: int | None,
    steps: int,
    mode: str = "maximum",
) -> list[int]:
    """Generate ``steps`` tokens; the 'model' prefers ``model_says`` (cycled)."""
    request = {
        "thinking_token_budget": budget,
        "grace_tokens": grace,
        "budget_mode": mode,
        "prompt": THINKING_PROMPT,
    }
    params = plugin.custom_params(request, tok)
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


def reasoning_of(tok: Any, out: list[int]) -> list[int]:
    """The tokens before the closing tag (all of them if it never came)."""
    close = ids(tok, "</think>")[0]
    return out[: out.index(close)] if close in out else out


@pytest.mark.parametrize("budget", [0, 1, 2, 3, 4, 5, 7, 30, 100])
def test_budget_is_a_maximum_with_the_end_inside_it(plugin: Any, tok: Any, budget: int) -> None:
    word = ids(tok, " the")[0]
    out = run(plugin, tok, [word], budget, grace=0, steps=budget + 10)
    full = ids(tok, ".\n\n</think>")
    # The end's text (".\n\n") fits in the budget from 3 tokens on; below, the closing
    # tag comes alone.
    end = full if budget >= len(full) - 1 else full[-1:]
    free = budget - (len(end) - 1)
    assert out[:free] == [word] * free  # free until the end must start
    assert out[free : free + len(end)] == end  # then exactly the end sequence
    assert len(reasoning_of(tok, out)) == budget  # the whole budget, never more
    assert out[free + len(end) :] == [word] * (budget + 10 - free - len(end))  # answer free


def test_a_line_end_inside_the_grace_window_closes_early(plugin: Any, tok: Any) -> None:
    word, newline = ids(tok, " the")[0], ids(tok, "\n")[0]
    end = ids(tok, ".\n\n</think>")
    # Budget 30, grace 10: the end must start by 27, a line end from 17 on starts it.
    says = [word] * 5 + [newline] + [word] * 14 + [newline] + [word] * 50
    out = run(plugin, tok, says, budget=30, grace=10, steps=40)
    assert out[:21] == says[:21]  # the line end at 5 was before the window: ignored
    assert out[21 : 21 + len(end)] == end  # the one at 20 was inside it
    assert len(reasoning_of(tok, out)) == 24


def test_without_a_line_end_the_window_closes_in_time(plugin: Any, tok: Any) -> None:
    word = ids(tok, " the")[0]
    out = run(plugin, tok, [word], budget=100, grace=None, steps=110)  # default: 100 // 16
    assert len(reasoning_of(tok, out)) == 100


def test_default_grace_is_a_sixteenth_of_the_budget(plugin: Any, tok: Any) -> None:
    word, newline = ids(tok, " the")[0], ids(tok, "\n")[0]
    end = ids(tok, ".\n\n</think>")
    # Budget 100: the end starts by 97, so the window is 91..96 (grace 6).
    early = run(plugin, tok, [word] * 89 + [newline] + [word] * 30, 100, None, 110)
    assert early[90:93] == [word] * 3  # a line end at 89: before the window
    late = run(plugin, tok, [word] * 91 + [newline] + [word] * 30, 100, None, 110)
    assert late[92 : 92 + len(end)] == end


@pytest.mark.parametrize("budget", [0, 1, 7, 100])
def test_overshoot_mode_is_nvidias_rule(plugin: Any, tok: Any, budget: int) -> None:
    """The budget, then the whole end sequence (grace 0)."""
    word = ids(tok, " the")[0]
    out = run(plugin, tok, [word], budget, grace=0, steps=budget + 10, mode="overshoot")
    end = ids(tok, ".\n\n</think>") if budget else ids(tok, "</think>")
    assert out[:budget] == [word] * budget
    assert out[budget : budget + len(end)] == end


def test_overshoot_grace_waits_for_the_end_of_the_line(plugin: Any, tok: Any) -> None:
    word, newline = ids(tok, " the")[0], ids(tok, "\n")[0]
    says = [word] * 12 + [newline] + [word] * 50
    out = run(plugin, tok, says, budget=5, grace=100, steps=30, mode="overshoot")
    end = ids(tok, ".\n\n</think>")
    assert out[:13] == says[:13]  # past the budget, up to and with the newline
    assert out[13 : 13 + len(end)] == end


def test_overshoot_grace_runs_out(plugin: Any, tok: Any) -> None:
    word = ids(tok, " the")[0]
    out = run(plugin, tok, [word], budget=5, grace=8, steps=30, mode="overshoot")
    end = ids(tok, ".\n\n</think>")
    assert out[:13] == [word] * 13 and out[13 : 13 + len(end)] == end


def test_skips_what_the_output_already_ends_with(plugin: Any, tok: Any) -> None:
    dot, newline = ids(tok, ".")[0], ids(tok, "\n")[0]
    out = run(plugin, tok, [dot, newline], budget=6, grace=0, steps=12)
    # The end starts at 3 (6 - 3), after ". \n ." : it picks up after that ".".
    assert tok.decode(out).count("</think>") == 1
    assert tok.decode(reasoning_of(tok, out)) == ".\n.\n\n"
    assert len(reasoning_of(tok, out)) == 5  # the skipped "." counts once: under budget


def test_model_closing_itself_stops_the_processor(plugin: Any, tok: Any) -> None:
    word, close = ids(tok, " the")[0], ids(tok, "</think>")[0]
    out = run(plugin, tok, [word, word, close] + [word] * 40, budget=10, grace=0, steps=30)
    assert out.count(close) == 1  # never forced a second time


def test_a_tool_call_drafted_in_the_reasoning_is_budgeted(plugin: Any, tok: Any) -> None:
    """Only </think> ends the reasoning (to the parser too): a <tool_call> before it
    is reasoning, and the budget still closes it."""
    word, call = ids(tok, " the")[0], ids(tok, "<tool_call>")[0]
    out = run(plugin, tok, [word, call] + [word] * 40, budget=5, grace=0, steps=30)
    assert len(reasoning_of(tok, out)) == 5 and call in reasoning_of(tok, out)


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
