"""Chaos: SGLang's scheduler SIGKILLed under load, again and again, with this script as
the external restart loop (what systemd's ``Restart=`` or Kubernetes does). This server
(``--engine sglang``) and plain SGLang (``python -m sglang.launch_server``, the same
model and SGLang flags) run the same schedule one after the other, in one run.

    python -m bench.chaos                      # ~10 min: 2 kills each, 8 streams
    python -m bench.chaos --kills 5 --interval 30

Clients keep ``--concurrency`` chat streams going and retry at once when refused (no 200:
the server is down or says 503). A stream that got its 200 and then did not end with
``[DONE]`` after a completion, or ended with an error event, is **lost**. Per kill:
requests in flight at the kill, how many of them were lost, lost requests that were not
in flight (the goal: none), seconds from the kill to the last in-flight request's end, to
the process's exit, and from the restart to ready; and SGLang processes left behind.
Results: ``--out`` (JSON) and a plot next to it (``bench/chaos_plot.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.chaos_plot import plot
from bench.servers import OURS as OURS_LAUNCH
from bench.servers import Supervised, sglang_argv
from omni_sglang.launch import free_local_port

#: SGLang's KV pool for both servers: small, the same.
SGLANG_FLAGS = ["--max-total-tokens", "65536"]
OURS = [*OURS_LAUNCH, "--engine", "sglang"]


@dataclass
class Attempt:
    started: float
    ended: float = 0.0
    accepted_at: float | None = None  # the 200 arrived
    completed: bool = False  # the answer ended with [DONE], no error event


@dataclass
class Kill:
    killed_at: float
    exited_at: float | None = None
    ready_at: float | None = None
    restarted_at: float = 0.0
    exit_status: int | None = None
    orphans: int = 0


_free_port = free_local_port


async def _stream_once(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> Attempt:
    attempt = Attempt(started=time.monotonic())
    try:
        async with client.stream("POST", url, json=body) as response:
            if response.status_code == 200:
                attempt.accepted_at = time.monotonic()
                errored, done = False, False
                async for line in response.aiter_lines():
                    errored = errored or line.startswith('data: {"error"')
                    done = done or line == "data: [DONE]"  # a blank line follows it
                attempt.completed = done and not errored
    except httpx.HTTPError:
        pass
    attempt.ended = time.monotonic()
    return attempt


async def _client(url: str, body: dict[str, Any], stop: asyncio.Event, log: list[Attempt]) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(120, connect=2)) as client:
        while not stop.is_set():
            attempt = await _stream_once(client, url + "/v1/chat/completions", body)
            log.append(attempt)
            if attempt.accepted_at is None:
                await asyncio.sleep(0.2)  # refused: the server is down or full; retry


async def run_target(server: Supervised, args: argparse.Namespace) -> dict:
    print(f"[{server.name}] starting ...", flush=True)
    server.spawn()
    await server.wait_ready()
    models = httpx.get(server.url + "/v1/models", timeout=10).json()["data"]
    body = {
        "model": models[0]["id"],
        "messages": [{"role": "user", "content": "Tell me about Paris."}],
        "max_tokens": args.max_tokens,
        "min_tokens": args.max_tokens,
        "stream": True,
    }
    attempts: list[Attempt] = []
    stop = asyncio.Event()
    clients = [
        asyncio.create_task(_client(server.url, body, stop, attempts))
        for _ in range(args.concurrency)
    ]
    kills = []
    try:
        for number in range(args.kills):
            await asyncio.sleep(args.interval)
            victims = server.children()
            scheduler = server.scheduler()
            kill = Kill(killed_at=time.monotonic())
            scheduler.send_signal(signal.SIGKILL)
            kill.exited_at, kill.exit_status = await server.wait_exit()
            _, alive = psutil.wait_procs(victims, timeout=5)
            kill.orphans = len(alive)
            for process in alive:  # the supervisor's clean-up, so the next start fits
                process.kill()
            kill.restarted_at = server.spawn()
            kill.ready_at = await server.wait_ready()
            kills.append(kill)
            print(f"[{server.name}] kill {number + 1}/{args.kills}: {asdict(kill)}", flush=True)
        await asyncio.sleep(args.interval)  # the last restart serves again
    finally:
        stop.set()
        await asyncio.gather(*clients, return_exceptions=True)
        server.stop()
    return summarize(server.name, kills, attempts)


def _per_kill(kill: Kill, until: float, attempts: list[Attempt]) -> dict[str, Any]:
    """The kill's window runs to the next kill; a request belongs to it by when it ended."""
    ended = [a for a in attempts if kill.killed_at <= a.ended < until]
    accepted = [a for a in ended if a.accepted_at is not None]
    in_flight = [a for a in accepted if a.accepted_at < kill.killed_at]  # type: ignore[operator]
    later = [a for a in accepted if a.accepted_at >= kill.killed_at]  # type: ignore[operator]

    def since(t: float | None, start: float) -> float | None:
        return None if t is None else round(t - start, 2)

    return {
        "in_flight_at_kill": len(in_flight),
        "lost_in_flight": sum(not a.completed for a in in_flight),
        "lost_not_in_flight": sum(not a.completed for a in later),
        "refused_while_down": len(ended) - len(accepted),
        "kill_to_in_flight_ended_s": since(
            max((a.ended for a in in_flight), default=None), kill.killed_at
        ),
        "kill_to_exit_s": since(kill.exited_at, kill.killed_at),
        "exit_status": kill.exit_status,
        "restart_to_ready_s": since(kill.ready_at, kill.restarted_at),
        "kill_to_ready_s": since(kill.ready_at, kill.killed_at),
        "orphaned_processes": kill.orphans,
    }


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return round(sum(values) / len(values), 2) if values else None


def summarize(name: str, kills: list[Kill], attempts: list[Attempt]) -> dict[str, Any]:
    bounds = [k.killed_at for k in kills[1:]] + [float("inf")]
    rows = [_per_kill(k, until, attempts) for k, until in zip(kills, bounds, strict=True)]
    keys = [k for k in rows[0] if k != "exit_status"] if rows else []
    return {
        "server": name,
        "requests_completed": sum(a.completed for a in attempts),
        "kills": rows,
        "mean_per_kill": {key: _mean(rows, key) for key in keys},
    }


def _ratios(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, float | None]:
    out = {}
    for key, value in ours["mean_per_kill"].items():
        other = peer["mean_per_kill"].get(key)
        out[key] = round(value / other, 2) if value is not None and other else None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--interval", type=float, default=15, help="seconds of load per kill")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--out", default="bench/results/chaos.json")
    args = parser.parse_args()

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="omni-sglang-chaos-"))
    print(f"server logs in {logs}", flush=True)
    # The peer gets the exact SGLang command line our server runs SGLang with.
    peer_argv = sglang_argv(["--engine", "sglang"], SGLANG_FLAGS)
    ours_port, peer_port = _free_port(), _free_port()
    ours = Supervised(
        "omni-sglang",
        [
            *(*OURS, "--no-warmup", "--host", "127.0.0.1", "--port", str(ours_port)),
            *("--", *SGLANG_FLAGS),
        ],
        ours_port,
        logs / "omni-sglang.log",
        "/v1/health/ready",
    )
    peer = Supervised(
        "sglang.launch_server",
        [
            *(sys.executable, "-m", "sglang.launch_server", *peer_argv),
            *("--host", "127.0.0.1", "--port", str(peer_port), "--skip-server-warmup"),
        ],
        peer_port,
        logs / "sglang.log",
        "/health",
    )
    results = [
        asyncio.run(run_target(ours, args)),
        asyncio.run(run_target(peer, args)),
    ]
    report = {
        "benchmark": "chaos",
        "sglang_argv": peer_argv,
        "kills": args.kills,
        "interval_s": args.interval,
        "concurrency": args.concurrency,
        "max_tokens": args.max_tokens,
        "results": results,
        "ratio_ours_to_sglang": _ratios(results[0], results[1]),
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    plot(report, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
