"""The tool-call grammar's cost, ours beside SGLang's own, in one run: for the same tools
and each ``tool_choice`` mode, the structural tag our Nemotron plugin sends
(``tool_grammar.tool_call_structural_tag``) and the one SGLang's OpenAI server builds
for the ``qwen3_coder`` parser (``FunctionCallParser.get_structure_constraint``; for
``auto`` SGLang constrains only ``strict`` tools, so its tools are marked strict), both
compiled by the xgrammar SGLang's grammar backend is, on the tiny model's tokenizer:

- the tag's build time in Python (per request, before xgrammar sees it);
- compile time, uncached (a fresh compiler, cache off) and cached (the second request
  with the same tools: what both engines pay per request after the first);
- per-token mask time (``fill_next_token_bitmask``) and accept time along the same call
  text, which both grammars admit.

    python -m bench.grammar          # ~20 s: bench/results/grammar.{json,png}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from bench.grammar_plot import plot
from omni_sglang.config import ServerConfig
from omni_sglang.engines.grammar_tokens import grammar_tokenizer_info
from omni_sglang.tiny.model import ensure_tiny_model
from omni_sglang_nemotron.tool_grammar import tool_call_structural_tag

# The schema tests' tools (enum, const, bounds, a nested object, an array, bounded
# strings, a pattern), so the bench measures the grammar the tests hold to.
from tests.test_tool_schema import TOOLS

CALL = (
    "<tool_call>\n<function=book>\n<parameter=city>\nParis\n</parameter>\n"
    "<parameter=nights>\n2\n</parameter>\n"
    '<parameter=guest>\n{"name": "Ada Lovelace", "vip": true}\n</parameter>\n'
    '<parameter=extras>\n["breakfast"]\n</parameter>\n'
    "<parameter=note>\nlate, quiet room\n</parameter>\n"
    "<parameter=currency>\nEUR\n</parameter>\n</function>\n</tool_call>"
)
MODES = {
    "required": "required",
    "named": {"type": "function", "function": {"name": "book"}},
    "auto": "auto",
}
PEER = "SGLang FunctionCallParser (qwen3_coder)"
#: The figures compared as ours / SGLang's.
KEYS = ("build_ms", "compile_uncached_ms", "compile_cached_ms", "mask_us_per_token")


def ours(mode: str) -> str:
    function = "book" if mode == "named" else None
    return tool_call_structural_tag(TOOLS, function=function, auto=mode == "auto", parallel=False)


def sglang_tag(mode: str) -> str:
    from sglang.srt.entrypoints.openai.protocol import Tool, ToolChoice
    from sglang.srt.function_call.function_call_parser import FunctionCallParser

    strict = [{**t, "function": {**t["function"], "strict": True}} for t in TOOLS]
    tools = [Tool.model_validate(t) for t in (strict if mode == "auto" else TOOLS)]
    choice: Any = MODES[mode]
    if isinstance(choice, dict):
        choice = ToolChoice.model_validate(choice)
    kind, tag = FunctionCallParser(tools, "qwen3_coder").get_structure_constraint(
        choice, parallel_tool_calls=False
    )
    assert kind == "structural_tag", kind
    return tag if isinstance(tag, str) else str(tag.model_dump_json())


def build_ms(make: Any, mode: str, repeats: int) -> float:
    """Median time to build the tag's JSON for one request, in Python, before xgrammar."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        make(mode)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def compile_times(info: Any, tag: str, repeats: int) -> dict[str, float]:
    import xgrammar as xgr

    uncached = []
    for _ in range(repeats):
        compiler = xgr.GrammarCompiler(info, cache_enabled=False)
        start = time.perf_counter()
        compiler.compile_structural_tag(tag)
        uncached.append(time.perf_counter() - start)
    compiler = xgr.GrammarCompiler(info)
    compiler.compile_structural_tag(tag)
    cached = []
    for _ in range(repeats):
        start = time.perf_counter()
        compiler.compile_structural_tag(tag)
        cached.append(time.perf_counter() - start)
    return {
        "compile_uncached_ms": statistics.median(uncached) * 1e3,
        "compile_cached_ms": statistics.median(cached) * 1e3,
    }


def token_times(info: Any, tag: str, ids: list[int], repeats: int) -> dict[str, float]:
    import xgrammar as xgr

    compiled = xgr.GrammarCompiler(info).compile_structural_tag(tag)
    mask = xgr.allocate_token_bitmask(1, info.vocab_size)
    masks, accepts = [], []
    for _ in range(repeats):
        matcher = xgr.GrammarMatcher(compiled)
        fill = accept = 0.0
        for token in ids:
            start = time.perf_counter()
            matcher.fill_next_token_bitmask(mask)
            middle = time.perf_counter()
            assert matcher.accept_token(token), token
            fill += middle - start
            accept += time.perf_counter() - middle
        masks.append(fill / len(ids))
        accepts.append(accept / len(ids))
    return {
        "mask_us_per_token": statistics.median(masks) * 1e6,
        "accept_us_per_token": statistics.median(accepts) * 1e6,
    }


def run(repeats: int) -> dict[str, Any]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ensure_tiny_model(ServerConfig().tiny_model_dir))
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    info = grammar_tokenizer_info(tokenizer, vocab_size=len(tokenizer), stop_token_ids=[eos])
    ids = tokenizer(CALL, add_special_tokens=False).input_ids
    rows = []
    for mode in MODES:
        row: dict[str, Any] = {"mode": mode}
        for who, make in (("ours", ours), ("sglang", sglang_tag)):
            tag = make(mode)
            figures = {
                "build_ms": build_ms(make, mode, repeats),
                **compile_times(info, tag, repeats),
                **token_times(info, tag, ids, repeats),
            }
            row.update({f"{who}_{k}": v for k, v in figures.items()})
        for key in KEYS:
            row[f"ratio_{key}"] = row[f"ours_{key}"] / row[f"sglang_{key}"]
        rows.append(row)
    return {
        "peer": PEER,
        "tokenizer": f"tiny model's ({len(tokenizer)} tokens)",
        "call_tokens": len(ids),
        "repeats": repeats,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--out", type=Path, default=Path("bench/results/grammar.json"))
    args = p.parse_args(argv)
    result = run(args.repeats)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out.with_suffix(".png"))
    for row in result["rows"]:
        ratios = ", ".join(f"{key} x{row[f'ratio_{key}']:.2f}" for key in KEYS)
        print(f"{row['mode']:>8} (ours / SGLang's): {ratios}")


if __name__ == "__main__":
    main()
