"""Serving benchmark with our workload mix: media (image, video, audio) and reasoning on
or off, against this server or any OpenAI-compatible one, and the server's overhead over
its engine run in-process. ``bench/serve.py`` is the side-by-side with SGLang's own server
through SGLang's own load generator; this one keeps a hand-written client because
``sglang.bench_serving`` sends neither video nor audio and has no in-process baseline.

A sweep runs every (workload, reasoning on/off, streaming, concurrency) cell: a closed
loop of ``--requests`` requests (at least 2 x concurrency) keeping ``concurrency`` in
flight, each generating exactly ``--max-tokens`` tokens (``ignore_eos``). Reported per
cell: TTFT, inter-token latency, TPOT and end-to-end latency (mean/p50/p90/p99 ms),
request and token throughput, errors. Output: JSON plus one PNG per sweep.

Overhead: with no ``--base-url`` the benchmark starts our server itself (tiny model, CPU
engine, 127.0.0.1, a free port), runs the sweep, then the same text requests through
HTTP and to the same CPU engine run in-process (same token ids, same sampling),
alternating, at the ``--overhead-concurrency`` levels, and reports HTTP / engine ratios.

    python -m bench.serve_mix                                   # ours, CPU, ~4 min
    python -m bench.serve_mix --base-url http://127.0.0.1:30000 --model nvidia/... \
        --out bench/results/serve_sglang.json               # a peer, same workloads
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from bench.serve_client import (
    WORKLOADS,
    Target,
    chat_body,
    messages_for,
    run_cell,
    summarize,
)
from bench.serve_mix_plot import plot
from omni_sglang.launch import free_local_port


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--base-url", help="a running server; unset: start ours (tiny, CPU)")
    p.add_argument("--model", default="tiny-nemotron-h", help="model name to request")
    p.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"))
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma list")
    p.add_argument("--reasoning", default="on,off", help="on, off or on,off")
    p.add_argument("--stream", default="on", help="on, off or on,off")
    p.add_argument("--concurrency", default="1,4,16", help="comma list of levels")
    p.add_argument("--requests", type=int, default=8, help="per cell (at least 2 x level)")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--no-ignore-eos", action="store_true", help="for servers without it")
    p.add_argument("--overhead-concurrency", default="1,16", help="'' skips the baseline")
    p.add_argument("--overhead-requests", type=int, default=32, help="per side and cell")
    p.add_argument("--overhead-rounds", type=int, default=4, help="HTTP/engine alternations")
    p.add_argument("--out", default="bench/results/serve_mix_cpu.json")
    p.add_argument("--plot", help="PNG path (default: --out with .png)")
    p.add_argument("--server-arg", action="append", default=[], help="extra launch flag")
    return p.parse_args(argv)


def _levels(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _switches(text: str) -> list[bool]:
    return [x.strip() == "on" for x in text.split(",") if x.strip()]


# -- our server, when no --base-url is given --------------------------------------------------


_free_port = free_local_port


@contextlib.contextmanager
def our_server(extra: list[str]) -> Iterator[str]:
    port = _free_port()
    log = Path("bench/results/.serve_server.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "omni_sglang.launch", "--host", "127.0.0.1"),
                *("--port", str(port), "--no-warmup", *extra),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/v1/health/ready", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError("server not ready in 300 s")
                time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    log.unlink(missing_ok=True)


# -- the sweep -----------------------------------------------------------------------------


def cell_bodies(
    target: Target, args: argparse.Namespace, workload: str, reasoning: bool, stream: bool, n: int
) -> list[dict[str, Any]]:
    return [
        chat_body(
            target,
            messages_for(workload, i),
            max_tokens=args.max_tokens,
            reasoning=reasoning,
            stream=stream,
            temperature=args.temperature,
            top_p=args.top_p,
        )
        for i in range(n)
    ]


async def sweep(target: Target, args: argparse.Namespace) -> list[dict[str, Any]]:
    cells = [
        (w, r, s, c)
        for w in args.workloads.split(",")
        for r in _switches(args.reasoning)
        for s in _switches(args.stream)
        for c in _levels(args.concurrency)
    ]
    sizes = [max(args.requests, 2 * c) for *_, c in cells]
    # Warm-up: one request of each workload (media decoders, first-use allocations).
    for w in {w for w, *_ in cells}:
        await run_cell(target, cell_bodies(target, args, w, True, True, 1), 1)
    rows = []
    with tqdm(total=sum(sizes), unit="req", desc="sweep") as bar:
        for (workload, reasoning, stream, conc), size in zip(cells, sizes, strict=True):
            bar.set_postfix_str(f"{workload} think={reasoning} stream={stream} c={conc}")
            bodies = cell_bodies(target, args, workload, reasoning, stream, size)
            results, duration = await run_cell(target, bodies, conc, on_done=lambda: bar.update())
            rows.append(
                {
                    "workload": workload,
                    "reasoning": reasoning,
                    "stream": stream,
                    "concurrency": conc,
                    **summarize(results, duration),
                }
            )
    return rows


# -- the server's overhead over the engine alone ---------------------------------------------


async def overhead(target: Target, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The same text requests through HTTP and to the engine in-process, alternating in
    ``--overhead-rounds`` rounds so load from other processes on the shared cores hits
    both sides alike. The server stays up but idle while the engine runs (its worker
    sleeps on a condition): both sides have the cores to themselves in turn."""
    from bench.serve_engine import run_engine_cell, start_engine
    from omni_sglang.config import load_config
    from omni_sglang.tiny.model import ensure_tiny_model

    # The model the server found: the same configuration sources (environment, defaults).
    engine = await start_engine(ensure_tiny_model(load_config().tiny_model_dir))
    levels, rounds = _levels(args.overhead_concurrency), args.overhead_rounds
    sizes = {c: max(args.overhead_requests // rounds, 2 * c) for c in levels}
    out = []
    total = 2 * 2 * rounds * sum(sizes.values())
    try:
        with tqdm(total=total, unit="req", desc="overhead") as bar:
            for stream in (True, False):
                for conc in levels:
                    bodies = cell_bodies(target, args, "text", True, stream, sizes[conc])
                    sides: dict[str, tuple[list[Any], float]] = {"http": ([], 0.0)}
                    sides["engine"] = ([], 0.0)
                    for _ in range(rounds):
                        http = await run_cell(target, bodies, conc, on_done=lambda: bar.update())
                        alone = await run_engine_cell(engine, bodies, conc)
                        bar.update(len(bodies))
                        for name, (results, seconds) in (("http", http), ("engine", alone)):
                            sides[name] = (sides[name][0] + results, sides[name][1] + seconds)
                    row: dict[str, Any] = {"concurrency": conc, "stream": stream}
                    row.update({name: summarize(*side) for name, side in sides.items()})
                    row["ratios"], row["overhead_ms_per_request"] = _ratios(
                        row["http"], row["engine"]
                    )
                    out.append(row)
    finally:
        await engine.shutdown()
    return out


def _ratios(http: dict[str, Any], engine: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a and b else None

    def stat(summary: dict[str, Any], key: str, name: str) -> float | None:
        value = summary.get(key)
        return value.get(name) if isinstance(value, dict) else None

    ratios = {
        "e2e_p50": ratio(stat(http, "e2e_ms", "p50"), stat(engine, "e2e_ms", "p50")),
        "e2e_mean": ratio(stat(http, "e2e_ms", "mean"), stat(engine, "e2e_ms", "mean")),
        "ttft_p50": ratio(stat(http, "ttft_ms", "p50"), stat(engine, "ttft_ms", "p50")),
        "tpot_p50": ratio(stat(http, "tpot_ms", "p50"), stat(engine, "tpot_ms", "p50")),
        # Engine over HTTP, so that > 1 reads as "the server costs this much" here too.
        "throughput": ratio(engine["output_token_throughput"], http["output_token_throughput"]),
    }
    h, e = stat(http, "e2e_ms", "mean"), stat(engine, "e2e_ms", "mean")
    return ratios, round(h - e, 2) if h is not None and e is not None else None


# -- main ------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, base_url: str, ours: bool) -> dict[str, Any]:
    target = Target(base_url, args.model, args.api_key, ignore_eos=not args.no_ignore_eos)
    started = time.monotonic()
    rows = await sweep(target, args)
    over = await overhead(target, args) if ours and args.overhead_concurrency else []
    return {
        "benchmark": "serve",
        "target": {
            "base_url": base_url,
            "model": args.model,
            "server": "omni-sglang, CPU engine (started by the benchmark)" if ours else "external",
        },
        "config": {
            k: getattr(args, k)
            for k in (
                *("workloads", "reasoning", "stream", "concurrency", "requests", "max_tokens"),
                *("temperature", "top_p", "overhead_concurrency", "overhead_requests"),
                "overhead_rounds",
            )
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "sweep_seconds": round(time.monotonic() - started, 1),
        "results": rows,
        "overhead": over,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.monotonic()
    if args.base_url:
        result = asyncio.run(run(args, args.base_url.rstrip("/"), ours=False))
    else:
        with our_server(args.server_arg) as url:
            result = asyncio.run(run(args, url, ours=True))
    result["total_seconds"] = round(time.monotonic() - started, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    png = Path(args.plot) if args.plot else out.with_suffix(".png")
    plot(result, png)
    for row in result["overhead"]:
        print(
            f"overhead c={row['concurrency']} stream={row['stream']}: "
            f"{row['overhead_ms_per_request']} ms/request, ratios {row['ratios']}"
        )
    errors = sum(r["errors"] for r in result["results"])
    print(f"wrote {out} and {png} ({result['total_seconds']} s, {errors} errors)")


if __name__ == "__main__":
    main()
