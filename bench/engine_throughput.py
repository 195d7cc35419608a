"""Tokens/s of the CPU engine against plain transformers ``generate()``, same tiny model,
same process, same threads, in one run.

At concurrency C our engine serves C concurrent requests (each its own stream); the
peer gets the same C prompts as one left-padded batch, which is how one would serve
them with plain transformers. Results: JSON with per-concurrency figures and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

from omni_sglang.engines.base import EngineRequest
from omni_sglang.engines.cpu.engine import CpuEngine
from omni_sglang.tiny.model import ensure_tiny_model

PROMPT = "<|im_start|>user\nTell me about Paris<|im_end|>\n<|im_start|>assistant\n<think>\n"


async def ours(engine: CpuEngine, concurrency: int, new_tokens: int) -> float:
    async def one(i: int) -> int:
        req = EngineRequest(
            rid=f"b{concurrency}-{i}-{time.monotonic_ns()}",
            prompt=PROMPT,
            sampling_params={"max_new_tokens": new_tokens, "ignore_eos": True, "temperature": 0},
        )
        n = 0
        async for out in engine.generate(req):
            n += len(out.token_ids)
        return n

    started = time.perf_counter()
    counts = await asyncio.gather(*(one(i) for i in range(concurrency)))
    return sum(counts) / (time.perf_counter() - started)


def peer(model: Any, tokenizer: Any, concurrency: int, new_tokens: int) -> float:
    tokenizer.padding_side = "left"
    batch = tokenizer([PROMPT] * concurrency, return_tensors="pt", add_special_tokens=False)
    started = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            **batch, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False
        )
    elapsed = time.perf_counter() - started
    return (out.shape[1] - batch.input_ids.shape[1]) * concurrency / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench/results/engine_throughput.json")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = ensure_tiny_model(Path.home() / ".cache" / "omni_sglang")
    engine = CpuEngine(path)
    await engine.start()
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    await ours(engine, 1, 8)  # warm both up
    peer(model, tokenizer, 1, 8)

    rows = []
    for c in args.concurrency:
        ours_tps = max([await ours(engine, c, args.new_tokens) for _ in range(args.repeats)])
        peer_tps = max(peer(model, tokenizer, c, args.new_tokens) for _ in range(args.repeats))
        row = {
            "concurrency": c,
            "omni_sglang_cpu_tokens_per_s": round(ours_tps, 1),
            "transformers_generate_tokens_per_s": round(peer_tps, 1),
            "ratio_ours_over_peer": round(ours_tps / peer_tps, 3),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    await engine.shutdown()
    result = {
        "benchmark": "engine_throughput",
        "model": "tiny-nemotron-h (random weights)",
        "new_tokens_per_request": args.new_tokens,
        "torch_threads": torch.get_num_threads(),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "results": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
