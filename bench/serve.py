"""Side by side, in one run: SGLang's own load generator (``python -m sglang.bench_serving``,
unchanged) against SGLang's own server (``python -m sglang.launch_server``), this server on
the sglang engine and this server on the cpu engine: the same tiny Nemotron-H model, and
for the two SGLang runtimes the same SGLang flags (ours ``--dry-run`` prints them).

    python -m bench.serve                      # ~11 min on 2 cores: bench/results/serve.{json,png}
    python -m bench.serve --rounds 1 --concurrency 1 --backends sglang-oai-chat

Every cell (bench_serving backend x concurrency) runs on each server in turn, ``--rounds``
times, each round in another server order, so load from elsewhere on the shared cores
hits all servers alike; all servers are up at once (idle ones sleep). Backends:
``sglang-oai-chat`` (``/v1/chat/completions``) and
``sglang`` (native ``/generate``); dataset ``random-ids`` (token ids from the model's
tokenizer, no hub download), fixed input and output lengths, ``ignore_eos``. Per cell the
figures are bench_serving's own (throughput, TTFT, ITL, TPOT, end-to-end), the mean over
rounds, and each server's ratios to ``sglang.launch_server``. Our media and reasoning
workload mix and the overhead over the in-process engine are ``bench/serve_mix.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from bench.serve_plot import plot
from bench.servers import OURS, Supervised, sglang_argv
from omni_sglang.launch import free_local_port

#: SGLang's pool for both SGLang runtimes, small enough for three servers in 24 GiB.
SGLANG_FLAGS = ["--max-total-tokens", "16384", "--max-running-requests", "32"]
MODEL = ["--model", "tiny"]
#: bench_serving's figures kept per run (its JSON has more; the raw lines are kept too).
METRICS = (
    *("completed", "duration", "request_throughput", "output_throughput"),
    *("mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms"),
    *("mean_itl_ms", "median_itl_ms", "p99_itl_ms"),
    *("median_tpot_ms", "median_e2e_latency_ms"),
)
PEER = "sglang.launch_server"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--servers", default=f"{PEER},omni-sglang:sglang,omni-sglang:cpu")
    p.add_argument("--backends", default="sglang-oai-chat,sglang")
    p.add_argument("--concurrency", default="1,16")
    p.add_argument("--prompts", type=int, default=16, help="per run: at least 4 x concurrency")
    p.add_argument("--input-len", type=int, default=256)
    p.add_argument("--output-len", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default="bench/results/serve.json")
    return p.parse_args(argv)


def _servers(names: list[str], logs: Path) -> dict[str, Supervised]:
    peer_argv = sglang_argv([*MODEL, "--engine", "sglang"], SGLANG_FLAGS)
    out = {}
    for name in names:
        port = free_local_port()
        where = ("--host", "127.0.0.1", "--port", str(port))
        if name == PEER:
            argv = [sys.executable, "-m", "sglang.launch_server", *peer_argv, *where]
            argv.append("--skip-server-warmup")
            out[name] = Supervised(name, argv, port, logs / f"{name}.log", "/health")
            continue
        engine = name.split(":", 1)[1]
        argv = [*OURS, *MODEL, "--engine", engine, "--no-warmup", *where]
        if engine == "sglang":
            argv += ["--", *SGLANG_FLAGS]
        out[name] = Supervised(name, argv, port, logs / f"{name}.log", "/v1/health/ready")
    return out


@contextlib.contextmanager
def running(servers: dict[str, Supervised]) -> Iterator[None]:
    try:
        for server in servers.values():
            server.spawn()

        async def ready() -> None:
            await asyncio.gather(*(s.wait_ready() for s in servers.values()))

        asyncio.run(ready())
        yield
    finally:
        for server in servers.values():
            server.stop()


@functools.cache
def model_of(server: Supervised) -> tuple[str, str]:
    """The name the server serves and its checkpoint folder (bench_serving's tokenizer)."""
    first = httpx.get(server.url + "/v1/models", timeout=10).json()["data"][0]
    return first["id"], first.get("root") or first["id"]


def bench_serving(
    server: Supervised, backend: str, concurrency: int, args: argparse.Namespace, out: Path
) -> dict[str, Any]:
    model, tokenizer = model_of(server)
    argv = [
        *(sys.executable, "-m", "sglang.bench_serving", f"--backend={backend}"),
        *(f"--base-url={server.url}", f"--model={model}", f"--tokenizer={tokenizer}"),
        *("--dataset-name=random-ids", "--random-range-ratio=1.0"),
        *(f"--random-input-len={args.input_len}", f"--random-output-len={args.output_len}"),
        f"--num-prompts={max(args.prompts, 4 * concurrency)}",
        *(f"--max-concurrency={concurrency}", f"--output-file={out}", "--disable-tqdm"),
    ]
    # Offline: it would look the model name up on the hub first (45 s of retries here).
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(argv, capture_output=True, text=True, timeout=1800, env=env)
    if run.returncode != 0:
        raise RuntimeError(f"bench_serving on {server.name} failed:\n{run.stderr[-3000:]}")
    line: dict[str, Any] = json.loads(out.read_text().splitlines()[-1])
    out.unlink()
    return line


def _mean(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
    return round(sum(values) / len(values), 3) if values else None


def summarize(cells: dict[tuple[str, str, int], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for (server, backend, conc), runs in cells.items():
        row = {"server": server, "backend": backend, "concurrency": conc}
        row.update({key: _mean(runs, key) for key in METRICS})
        row["completed_all_rounds"] = sum(r["completed"] for r in runs)
        row["rounds"] = [{k: r.get(k) for k in METRICS} for r in runs]
        rows.append(row)
    by_cell = {(r["backend"], r["concurrency"]): r for r in rows if r["server"] == PEER}
    for row in rows:
        peer = by_cell.get((row["backend"], row["concurrency"]))
        if peer is not None and row["server"] != PEER:
            row["vs_sglang"] = ratios(row, peer)
    return rows


def ratios(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, float | None]:
    def ratio(key: str) -> float | None:
        a, b = ours.get(key), peer.get(key)
        return round(a / b, 3) if a and b else None

    def diff(key: str) -> float | None:
        a, b = ours.get(key), peer.get(key)
        return round(a - b, 3) if a is not None and b is not None else None

    return {
        "output_throughput": ratio("output_throughput"),  # goal: >= 0.95
        "median_ttft": ratio("median_ttft_ms"),
        "median_itl": ratio("median_itl_ms"),
        "median_itl_ms_added": diff("median_itl_ms"),  # goal: <= 1 ms
        "p99_itl": ratio("p99_itl_ms"),
        "median_e2e": ratio("median_e2e_latency_ms"),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    names = [n for n in args.servers.split(",") if n]
    backends = [b for b in args.backends.split(",") if b]
    levels = [int(c) for c in args.concurrency.split(",") if c]
    logs = Path(tempfile.mkdtemp(prefix="omni-sglang-serve-"))
    print(f"server logs in {logs}; starting {', '.join(names)} ...", flush=True)
    started = time.monotonic()
    servers = _servers(names, logs)
    cells: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    with running(servers):
        print(f"all ready in {time.monotonic() - started:.0f} s", flush=True)
        # Each round starts the cells with another server: none always runs first.
        runs = [
            (b, c, names[(r + i) % len(names)])
            for r in range(args.rounds)
            for b in backends
            for c in levels
            for i in range(len(names))
        ]
        for backend, conc, name in tqdm(runs, unit="run", desc="bench_serving"):
            line = bench_serving(servers[name], backend, conc, args, logs / "run.jsonl")
            cells.setdefault((name, backend, conc), []).append(line)
    result = {
        "benchmark": "serve",
        "load_generator": "python -m sglang.bench_serving (random-ids, ignore_eos)",
        "servers": {n: servers[n].argv[1:] for n in names},
        "config": {
            k: getattr(args, k)
            for k in ("backends", "concurrency", "prompts", "input_len", "output_len", "rounds")
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": summarize(cells),
        "total_seconds": round(time.monotonic() - started, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, out.with_suffix(".png"))
    for row in result["results"]:
        if "vs_sglang" in row:
            print(f"{row['server']} {row['backend']} c={row['concurrency']}: {row['vs_sglang']}")
    print(f"wrote {out} and {out.with_suffix('.png')} ({result['total_seconds']} s)")


if __name__ == "__main__":
    main()
