"""Reasoning costs, ours against SGLang's own, in one run:

- the thinking-budget logits processor, per request per decode step, at prompt lengths
  1k and 50k tokens and batch sizes 1 and 64, in both of its modes (``maximum``, the
  default, and ``overshoot``, NVIDIA's rule), against SGLang's
  ``ThinkingBudgetLogitProcessor`` (steady state: reasoning below the budget);
- the streaming reasoning parser, per chunk, against SGLang's ``Nemotron3Detector``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from bench import reasoning_plot
from omni_sglang.tiny.model import ensure_tiny_model
from omni_sglang_nemotron.plugin import NemotronThinkingBudgetPlugin
from omni_sglang_nemotron.reasoning import NemotronV3ReasoningParser

VOCAB = 131072  # the real model's vocabulary width
PROMPT_TAIL = "<|im_start|>assistant\n<think>\n"


class Req:
    def __init__(self, prompt: list[int]):
        self.origin_input_ids = prompt
        self.output_ids: list[int] = []


def time_processor(
    processor: Any, make_params: Any, prompt_len: int, batch: int, steps: int, think_id: int
) -> float:
    reqs = [Req([7] * (prompt_len - 1) + [think_id]) for _ in range(batch)]
    params = [make_params(r) for r in reqs]
    logits = torch.zeros(batch, VOCAB)
    total = 0.0
    for _ in range(steps):
        for r in reqs:
            r.output_ids.append(9)
        started = time.perf_counter()
        processor(logits, params)
        total += time.perf_counter() - started
    return total / (steps * batch) * 1e6


def bench_budget(tok: Any, steps: int) -> list[dict[str, Any]]:
    from sglang.srt.sampling.custom_logit_processor import ThinkingBudgetLogitProcessor

    think, end = tok.convert_tokens_to_ids("<think>"), tok.convert_tokens_to_ids("</think>")
    newline = tok("\n", add_special_tokens=False).input_ids[0]

    class SGLangBudget(ThinkingBudgetLogitProcessor):
        THINKING_START_TOKEN_ID = think
        THINKING_END_TOKEN_ID = end
        NEW_LINE_TOKEN_ID = newline

    plugin = NemotronThinkingBudgetPlugin()
    ours_cls = plugin.processor_class()

    def ours_params(mode: str) -> Any:
        base = plugin.custom_params(
            {"thinking_token_budget": 10**6, "budget_mode": mode, "prompt": PROMPT_TAIL}, tok
        )
        assert base is not None
        return lambda req: {**base, "__req__": req}

    def sglang_params(req: Req) -> dict[str, Any]:
        return {"thinking_budget": 10**6, "__req__": req}

    rows = []
    for prompt_len in (1024, 50 * 1024):
        for batch in (1, 64):
            row: dict[str, Any] = {"prompt_tokens": prompt_len, "batch": batch}
            for mode in ("maximum", "overshoot"):
                cost = time_processor(
                    ours_cls(), ours_params(mode), prompt_len, batch, steps, think
                )
                row[f"ours_{mode}_us_per_request_step"] = round(cost, 3)
            theirs = time_processor(SGLangBudget(), sglang_params, prompt_len, batch, steps, think)
            row["sglang_us_per_request_step"] = round(theirs, 3)
            row["ratio_sglang_over_ours"] = round(
                theirs / row["ours_maximum_us_per_request_step"], 1
            )
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def bench_parser(chunks_count: int) -> dict[str, Any]:
    from sglang.srt.parser.reasoning_parser import Nemotron3Detector

    words = ["Let", " me", " think", " about", " this", ".", "\n", " The", " answer"]
    chunks = [words[i % len(words)] for i in range(chunks_count)] + ["</think>", "\n4", "."]

    def run_ours() -> float:
        parser = NemotronV3ReasoningParser(True)
        started = time.perf_counter()
        for c in chunks:
            parser.feed(c)
        parser.finish()
        return (time.perf_counter() - started) / len(chunks) * 1e6

    def run_sglang() -> float:
        detector = Nemotron3Detector(force_reasoning=True)
        started = time.perf_counter()
        for c in chunks:
            detector.parse_streaming_increment(c)
        detector.finish()
        return (time.perf_counter() - started) / len(chunks) * 1e6

    ours = min(run_ours() for _ in range(3))
    theirs = min(run_sglang() for _ in range(3))
    row = {
        "chunks": len(chunks),
        "ours_us_per_chunk": round(ours, 3),
        "sglang_us_per_chunk": round(theirs, 3),
        "ratio_sglang_over_ours": round(theirs / ours, 2),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench/results/reasoning.json")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--plot", default=None, help="PNG path (default: --out as .png)")
    args = parser.parse_args()
    tok = AutoTokenizer.from_pretrained(
        str(ensure_tiny_model(Path.home() / ".cache" / "omni_sglang"))
    )
    result = {
        "benchmark": "reasoning",
        "budget_processor": bench_budget(tok, args.steps),
        "parser": [bench_parser(n) for n in (2000, 8000, 32000)],
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    plot = Path(args.plot or Path(args.out).with_suffix(".png"))
    reasoning_plot.plot(result, plot)
    print(f"wrote {args.out} and {plot}")


if __name__ == "__main__":
    main()
