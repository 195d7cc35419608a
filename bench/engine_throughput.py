"""Tokens/s of three engines on the same tiny models, same machine, in one run: the
``sglang`` engine (SGLang's own runtime on this CPU, through our platform plugin), our
``cpu`` engine, and plain transformers ``generate()`` (the peer).

At concurrency C each engine serves C concurrent requests (each its own stream); the
peer gets the same C prompts as one left-padded batch, which is how one would serve
them with plain transformers. Engines run one at a time (start, warm up, measure, shut
down), so they never compete for the cores. Results: JSON with per-concurrency figures
and ratios over the peer, and a PNG (tokens/s against concurrency, one panel per model).

On a machine other processes share, run it with ``OMP_WAIT_POLICY=PASSIVE`` (SGLang's
processes inherit it): libgomp's default spin-waiting makes a 2-thread torch process up to
10x slower when another busy process holds one of the 2 cores, and SGLang's scheduler
shares them with busy processes of SGLang's own (our process, its detokenizer). The JSON
records the OMP settings and how many cores other processes took during each engine's
phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil
import torch

from omni_sglang.engines.base import Engine, EngineRequest
from omni_sglang.tiny.model import ensure_tiny_model

PROMPT = "<|im_start|>user\nTell me about Paris<|im_end|>\n<|im_start|>assistant\n<think>\n"
MODELS = ("tiny", "tiny-llama")
ENGINES = ("sglang", "cpu", "hf")
ENGINE_LABELS = {
    "sglang": "sglang engine (SGLang runtime on CPU, omni-sglang-cpu plugin)",
    "cpu": "cpu engine (omni_sglang CpuEngine)",
    "hf": "transformers generate() (one left-padded batch)",
}
MODEL_LABELS = {
    "tiny": "tiny Nemotron-H (Mamba-2/MoE/attention, random weights)",
    "tiny-llama": "tiny Llama (attention only, random weights)",
}
SGLANG_ARGS = ["--max-total-tokens", "131072"]
METHOD = (
    "One process, engines one at a time (start, one 8-token warm-up request, measure, "
    "shut down). Each request: the same chat prompt, {n} new tokens, greedy, ignore_eos. "
    "sglang/cpu engines: C concurrent streamed requests; tokens/s = all output tokens / "
    "wall time of the C requests; TTFT = per request, submit to first streamed token, "
    "averaged. transformers: the C prompts as one batch to generate(); its TTFT is the "
    "wall time of a 1-token generate() of that batch. Best of {r} repeats (highest "
    "tokens/s; lowest TTFT, taken independently). Start-up: sglang = SGLangEngine.start() "
    "(includes SGLang's imports in its subprocesses and model load), cpu = "
    "CpuEngine.start(), transformers = from_pretrained of model and tokenizer. SGLang's "
    "radix cache stays on (default server args plus {sglang_args})."
)


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (Linux /proc/stat; NaN elsewhere)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]  # steal: not ours to use
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU seconds of this process, its reaped children and its live subprocesses
    (SGLang's scheduler and detokenizer: read before shut-down, as they started within
    the engine's phase)."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:4])  # user, system, and those of reaped children
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return total


class OthersMeter:
    """Mean CPU cores other processes took while an engine ran: the machine's busy time
    minus ours. 0 is a clean measurement; near 1 on 2 cores, the figures are suspect."""

    def __init__(self) -> None:
        self._start = (time.perf_counter(), machine_busy_s(), own_cpu_s())

    def cores(self) -> float:
        wall, busy, own = (time.perf_counter(), machine_busy_s(), own_cpu_s())
        other = (busy - self._start[1]) - (own - self._start[2])
        return round(max(other, 0.0) / (wall - self._start[0]), 2)


def _request(tag: str, new_tokens: int) -> EngineRequest:
    return EngineRequest(
        rid=f"{tag}-{time.monotonic_ns()}",
        prompt=PROMPT,
        sampling_params={"max_new_tokens": new_tokens, "ignore_eos": True, "temperature": 0},
    )


async def served(engine: Engine, concurrency: int, new_tokens: int) -> dict[str, float]:
    """C concurrent requests on an engine: output tokens/s and mean TTFT (s)."""

    async def one(i: int) -> tuple[int, float]:
        submitted = time.perf_counter()
        first: float | None = None
        n = 0
        async for out in engine.generate(_request(f"b{concurrency}-{i}", new_tokens)):
            if out.token_ids and first is None:
                first = time.perf_counter() - submitted
            n += len(out.token_ids)
        return n, first if first is not None else float("nan")

    started = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    tokens = sum(n for n, _ in results)
    if tokens != concurrency * new_tokens:
        print(f"warning: {tokens} tokens, expected {concurrency * new_tokens}", flush=True)
    return {
        "tokens_per_s": tokens / elapsed,
        "ttft_s": sum(t for _, t in results) / concurrency,
        "tokens": tokens,
    }


def peer(model: Any, tokenizer: Any, concurrency: int, new_tokens: int) -> dict[str, float]:
    """The C prompts as one batch to transformers generate(): tokens/s, and the wall time
    of a 1-token generate() of the same batch as its TTFT."""
    tokenizer.padding_side = "left"
    batch = tokenizer([PROMPT] * concurrency, return_tensors="pt", add_special_tokens=False)

    def run(n: int) -> tuple[int, float]:
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**batch, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        return (out.shape[1] - batch.input_ids.shape[1]) * concurrency, (
            time.perf_counter() - started
        )

    ttft = run(1)[1]
    tokens, elapsed = run(new_tokens)
    return {"tokens_per_s": tokens / elapsed, "ttft_s": ttft, "tokens": tokens}


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {
        "tokens_per_s": max(r["tokens_per_s"] for r in runs),
        "ttft_s": min(r["ttft_s"] for r in runs),
        "tokens": runs[0]["tokens"],
    }


async def bench_served(
    engine: Engine, concurrency: list[int], new_tokens: int, repeats: int
) -> dict[int, dict[str, float]]:
    await served(engine, 1, 8)  # warm-up
    out = {}
    for c in concurrency:
        out[c] = best([await served(engine, c, new_tokens) for _ in range(repeats)])
        print(f"  c={c}: {out[c]['tokens_per_s']:.1f} tok/s", flush=True)
    return out


async def run_engine(
    name: str, model: str, path: Path, args: argparse.Namespace
) -> tuple[float, dict[int, dict[str, float]], float]:
    """Start one engine, measure every concurrency, shut it down: (start-up s, figures,
    other processes' mean CPU cores meanwhile)."""
    meter = OthersMeter()
    if name == "hf":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        started = time.perf_counter()
        hf = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        startup = time.perf_counter() - started
        peer(hf, tokenizer, 1, 8)  # warm-up
        figures = {}
        for c in args.concurrency:
            figures[c] = best(
                [peer(hf, tokenizer, c, args.new_tokens) for _ in range(args.repeats)]
            )
            print(f"  c={c}: {figures[c]['tokens_per_s']:.1f} tok/s", flush=True)
        del hf
        return startup, figures, meter.cores()

    engine: Engine
    if name == "sglang":
        from omni_sglang.config import load_config
        from omni_sglang.engines.sglang_backend import SGLangEngine

        config = load_config(
            {
                "engine": "sglang",
                "model": model,
                "sglang_args": SGLANG_ARGS,
                "log_level": args.sglang_log_level,
            },
            environ={},
        )
        engine = SGLangEngine(config, "cpu")
    else:
        from omni_sglang.engines.cpu.engine import CpuEngine

        engine = CpuEngine(path)
    started = time.perf_counter()
    await engine.start()
    startup = time.perf_counter() - started
    try:
        figures = await bench_served(engine, args.concurrency, args.new_tokens, args.repeats)
        others = meter.cores()  # before shut-down: SGLang's processes are still there
    finally:
        await engine.shutdown()
    return startup, figures, others


def rows_for(
    model: str, concurrency: list[int], figures: dict[str, dict[int, dict[str, float]]]
) -> list[dict[str, Any]]:
    rows = []
    for c in concurrency:
        tps = {e: f[c]["tokens_per_s"] for e, f in figures.items()}
        row: dict[str, Any] = {
            "model": model,
            "concurrency": c,
            "tokens_per_s": {e: round(v, 1) for e, v in tps.items()},
            "ttft_ms": {e: round(1000 * f[c]["ttft_s"], 1) for e, f in figures.items()},
        }
        if "hf" in tps:
            row["ratio_over_transformers"] = {
                e: round(v / tps["hf"], 3) for e, v in tps.items() if e != "hf"
            }
        if "sglang" in tps and "cpu" in tps:
            row["ratio_cpu_over_sglang"] = round(tps["cpu"] / tps["sglang"], 3)
        rows.append(row)
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="bench/results/engine_throughput.json")
    parser.add_argument("--plot", default=None, help="PNG path (default: --out as .png)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sglang-log-level", default="warning")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads of every engine (also OMP_NUM_THREADS for SGLang's processes); "
        "default: torch's own",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    load_start = os.getloadavg()
    started = time.perf_counter()
    cache = Path.home() / ".cache" / "omni_sglang"
    rows: list[dict[str, Any]] = []
    startup: dict[str, dict[str, float]] = {}
    loads: dict[str, dict[str, list[float]]] = {}
    others: dict[str, dict[str, float]] = {}
    for model in args.models:
        path = ensure_tiny_model(cache, model)
        figures: dict[str, dict[int, dict[str, float]]] = {}
        startup[model], loads[model], others[model] = {}, {}, {}
        for name in args.engines:
            print(f"{model} / {name}: starting", flush=True)
            load = os.getloadavg()[0]
            seconds, figures[name], others[model][name] = await run_engine(name, model, path, args)
            startup[model][name] = round(seconds, 2)
            loads[model][name] = [round(load, 2), round(os.getloadavg()[0], 2)]
            print(f"{model} / {name}: start-up {seconds:.1f} s", flush=True)
        for row in rows_for(model, args.concurrency, figures):
            rows.append(row)
            print(json.dumps(row), flush=True)

    result = {
        "benchmark": "engine_throughput",
        "method": METHOD.format(n=args.new_tokens, r=args.repeats, sglang_args=SGLANG_ARGS),
        "engines": {e: ENGINE_LABELS[e] for e in args.engines},
        "models": {m: MODEL_LABELS[m] for m in args.models},
        "new_tokens_per_request": args.new_tokens,
        "repeats": args.repeats,
        "ttft_definition": {
            "sglang": "mean over requests: submit to first streamed output token",
            "cpu": "mean over requests: submit to first streamed output token",
            "hf": "wall time of a 1-token generate() of the whole batch",
        },
        "sglang_args": SGLANG_ARGS,
        "torch_threads": torch.get_num_threads(),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "versions": {p: version(p) for p in ("sglang", "torch", "transformers")},
            # libgomp spin-waits by default: with other busy processes on 2 cores, a
            # 2-thread torch process can run 10x slower (OMP_WAIT_POLICY=PASSIVE avoids it).
            "omp_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")},
            "load_average_start": [round(x, 2) for x in load_start],
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
        },
        "wall_time_s": round(time.perf_counter() - started, 1),
        "startup_s": startup,
        "load_average_1min_before_after_each_engine": loads,
        # Mean CPU cores other processes used while each engine ran (start to shut-down).
        "other_processes_cpu_cores_during_each_engine": others,
        "results": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")

    from bench.engine_throughput_plot import plot

    png = Path(args.plot) if args.plot else out.with_suffix(".png")
    plot(result, png)
    print(f"wrote {png}")


if __name__ == "__main__":
    asyncio.run(main())
