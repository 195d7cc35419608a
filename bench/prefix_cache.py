"""Prefix caching on multi-turn conversations, side by side in one run: this server on the
sglang engine with SGLang's radix cache (the default: for the hybrid model, its Mamba
radix cache in ``extra_buffer`` mode) and the same server with ``--disable-radix-cache``.

    python -m bench.prefix_cache      # ~6 min on 2 cores: bench/results/prefix_cache.*
    python -m bench.prefix_cache --rounds 1 --turns 3

Three conversations, each ``--turns`` turns: ``text`` (a ~2k-token shared system prompt,
then short questions), ``text_8k`` (the same with ~8k tokens) and ``image`` (the seed's
multi-turn example: an image and a question, then follow-ups; its short prompt shows the
per-request cost no cache removes). A turn's prompt is the whole conversation so far; its answer
is a fixed line, so both servers see the same prompts. Per turn: the time to the first
token (a 1-token request end to end; the server's own TTFT, media fetching and SGLang's
processor included), the prompt and the cached tokens. Every round starts from a flushed
cache, with the servers in turn going first; figures are medians over rounds, and the
ratio is cached / uncached. The goal: turn N at most 30% of the uncached TTFT with a
2k-token shared prefix.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from bench.prefix_cache_plot import plot
from bench.serve import running
from bench.servers import OURS, Supervised
from omni_sglang.launch import free_local_port
from omni_sglang.media import synth

MODEL = "tiny-nemotron-h"
SGLANG_FLAGS = ["--max-total-tokens", "65536"]
SERVERS = {"cached": [], "uncached": ["--disable-radix-cache"]}
#: The shared system prompts: about 2,000 tokens of the tiny tokenizer's (the goal's
#: size), and about 8,000 (where prefill, not the per-request cost, dominates).
LINE = "You are a careful assistant: answer in one short line, and never guess. "
SYSTEMS = {"text": LINE * 57, "text_8k": LINE * 228}
CONVERSATIONS = (*SYSTEMS, "image")
QUESTIONS = ("What comes next?", "Why is that so?", "And after that?", "Summarise it.")
IMAGE = synth.image_bytes("JPEG", (640, 480))
GOAL = 0.30


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--turns", type=int, default=4)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", default="bench/results/prefix_cache.json")
    return p.parse_args(argv)


def _servers(logs: Path) -> dict[str, Supervised]:
    out = {}
    for name, extra in SERVERS.items():
        port = free_local_port()
        argv = [*OURS, "--engine", "sglang", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--no-warmup", "--", *SGLANG_FLAGS, *extra]
        out[name] = Supervised(name, argv, port, logs / f"{name}.log", "/v1/health/ready")
    return out


def opening(kind: str) -> list[dict[str, Any]]:
    if kind in SYSTEMS:
        system = {"role": "system", "content": SYSTEMS[kind]}
        return [system, {"role": "user", "content": QUESTIONS[0]}]
    image = f"data:image/jpeg;base64,{base64.b64encode(IMAGE).decode()}"
    content = [
        {"type": "image_url", "image_url": {"url": image}},
        {"type": "text", "text": "What is in this image? Name every object and its colour."},
    ]
    return [{"role": "user", "content": content}]


def first_token(client: httpx.Client, server: Supervised, messages: list[Any]) -> dict[str, Any]:
    body = {
        "model": MODEL,
        "messages": messages,
        "max_tokens": 1,
        "temperature": 0,
        "chat_template_kwargs": {"enable_thinking": False},
    }
    started = time.perf_counter()
    resp = client.post(server.url + "/v1/chat/completions", json=body)
    ttft = time.perf_counter() - started
    resp.raise_for_status()
    usage = resp.json()["usage"]
    return {
        "ttft_ms": ttft * 1000,
        "prompt_tokens": usage["prompt_tokens"],
        "cached_tokens": usage["prompt_tokens_details"]["cached_tokens"],
    }


def conversation(
    client: httpx.Client, server: Supervised, kind: str, turns: int
) -> list[dict[str, Any]]:
    client.post(server.url + "/flush_cache").raise_for_status()
    messages = opening(kind)
    measured = []
    for turn in range(turns):
        measured.append(first_token(client, server, messages))
        messages.append({"role": "assistant", "content": f"Noted, point {turn + 1}."})
        messages.append({"role": "user", "content": QUESTIONS[(turn + 1) % len(QUESTIONS)]})
    return measured


def summarize(runs: dict[tuple[str, str], list[list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    rows = []
    for (server, kind), rounds in sorted(runs.items()):
        for turn in range(len(rounds[0])):
            at = [r[turn] for r in rounds]
            rows.append(
                {
                    "server": server,
                    "conversation": kind,
                    "turn": turn + 1,
                    "median_ttft_ms": round(statistics.median(a["ttft_ms"] for a in at), 1),
                    "ttft_ms": [round(a["ttft_ms"], 1) for a in at],
                    "prompt_tokens": at[0]["prompt_tokens"],
                    "cached_tokens": round(statistics.median(a["cached_tokens"] for a in at)),
                }
            )
    uncached = {(r["conversation"], r["turn"]): r for r in rows if r["server"] == "uncached"}
    for row in rows:
        if row["server"] == "cached":
            peer = uncached[(row["conversation"], row["turn"])]["median_ttft_ms"]
            row["ttft_vs_uncached"] = round(row["median_ttft_ms"] / peer, 3)
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logs = Path(tempfile.mkdtemp(prefix="omni-sglang-prefix-cache-"))
    print(f"server logs in {logs}; starting {', '.join(SERVERS)} ...", flush=True)
    started = time.monotonic()
    servers = _servers(logs)
    names = list(servers)
    runs: dict[tuple[str, str], list[list[dict[str, Any]]]] = {}
    with running(servers), httpx.Client(timeout=600) as client:
        print(f"all ready in {time.monotonic() - started:.0f} s", flush=True)
        plan = [
            (kind, names[(r + i) % len(names)])
            for r in range(args.rounds)
            for kind in CONVERSATIONS
            for i in range(len(names))
        ]
        for kind, name in tqdm(plan, unit="conversation", desc="prefix cache"):
            measured = conversation(client, servers[name], kind, args.turns)
            runs.setdefault((name, kind), []).append(measured)
    rows = summarize(runs)
    last = [r for r in rows if r.get("turn") == args.turns and "ttft_vs_uncached" in r]
    result = {
        "benchmark": "prefix_cache",
        "servers": {n: servers[n].argv[2:] for n in names},
        "config": {"turns": args.turns, "rounds": args.rounds, "model": MODEL},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "goal": f"turn {args.turns} TTFT <= {GOAL:.0%} of uncached (text, ~2k shared tokens)",
        "goal_met": all(r["ttft_vs_uncached"] <= GOAL for r in last if r["conversation"] == "text"),
        "results": rows,
        "total_seconds": round(time.monotonic() - started, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, out.with_suffix(".png"))
    for row in last:
        print(f"{row['conversation']} turn {row['turn']}: {row['ttft_vs_uncached']} of uncached")
    print(f"wrote {out} and {out.with_suffix('.png')} ({result['total_seconds']} s)")


if __name__ == "__main__":
    main()
