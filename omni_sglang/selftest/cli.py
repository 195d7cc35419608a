"""``omni-sglang selftest``: run the checks against ``--url``, or against a server it
starts with the given launcher arguments (after ``--``) and stops afterwards."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from omni_sglang.launch import free_local_port
from omni_sglang.selftest import report
from omni_sglang.selftest.client import Client
from omni_sglang.selftest.context import Context
from omni_sglang.selftest.result import CheckSkipped, Result, run_check
from omni_sglang.selftest.suite import ANSWER_CHECKS, CHECKS

#: A server the selftest starts may take this long to be ready (a 30B checkpoint loads
#: for minutes; SGLang's own start on a CPU is ~1 min).
START_TIMEOUT_S = 1800


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="omni-sglang selftest",
        allow_abbrev=False,
        description="Run every example of NIM's document for this model against a server "
        "and check what holds on any model. Without --url it starts one with the "
        "launcher arguments given after '--' (e.g. -- --config configs/X.toml) and stops "
        "it afterwards. Exit status 0 only if no check failed.",
    )
    p.add_argument("--url", help="a running server, e.g. http://127.0.0.1:8000")
    p.add_argument("--api-key", help="the server's --api-key")
    p.add_argument("--json", type=Path, help="write the report here (versions, results)")
    p.add_argument(
        "--real-model",
        choices=("auto", "yes", "no"),
        default="auto",
        help="run the answer checks a real checkpoint passes; auto: unless the server "
        "serves a built-in random model",
    )
    p.add_argument(
        "--only", action="append", metavar="NAME", help="run only checks whose name contains NAME"
    )
    p.add_argument(
        "--max-tokens", type=int, default=256, help="max_tokens of the checks that reason (256)"
    )
    return p


@contextmanager
def started_server(launch_args: Sequence[str]) -> Iterator[str]:
    """``python -m omni_sglang.launch`` on a free local port, until ready; stopped after.
    Private media hosts are allowed so media by URL from this machine can be checked."""
    port = free_local_port()
    url = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile(prefix="omni-sglang-selftest-", suffix=".log", delete=False)  # noqa: SIM115
    command = [
        sys.executable,
        "-m",
        "omni_sglang.launch",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    command += ["--allow-private-media-hosts", *launch_args]
    print(f"starting: {' '.join(command[1:])} (log: {log.name})", flush=True)
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(proc, url, Path(log.name))
        yield url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    start = time.monotonic()
    next_note = start + 15
    while time.monotonic() - start < START_TIMEOUT_S:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-15:]
            raise RuntimeError(f"the server exited {proc.returncode}:\n" + "\n".join(tail))
        try:
            if httpx.get(url + "/v1/health/ready", timeout=2).status_code == 200:
                print(f"server ready after {time.monotonic() - start:.0f} s", flush=True)
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > next_note:
            print(f"  waiting for the server ({time.monotonic() - start:.0f} s)", flush=True)
            next_note += 15
        time.sleep(0.5)
    raise RuntimeError(f"the server was not ready after {START_TIMEOUT_S} s (log: {log})")


def _is_real_model(choice: str, health: Result) -> bool:
    if choice != "auto":
        return choice == "yes"
    urls = health.metrics.get("model_urls") or []
    return bool(urls) and not any(str(u).startswith("builtin:") for u in urls)


def run_checks(ctx: Context, only: Sequence[str] | None, real_model: str) -> list[Result]:
    def wanted(name: str) -> bool:
        return not only or any(part.lower() in name.lower() for part in only)

    results = [run_check("health and metadata", partial(CHECKS["health and metadata"], ctx))]
    _print_line(results[0])
    if results[0].status == "fail":
        return results  # no model name: nothing else can run
    ctx.real_model = _is_real_model(real_model, results[0])
    for name, check in list(CHECKS.items())[1:]:
        if wanted(name):
            results.append(run_check(name, partial(check, ctx)))
            _print_line(results[-1])
    for name, check in ANSWER_CHECKS.items():
        if not wanted(name):
            continue
        if ctx.real_model:
            result = run_check(name, partial(check, ctx), real_model=True)
        else:
            why = "the server serves a built-in random model (--real-model yes to run it)"
            result = run_check(name, partial(_skip, why), real_model=True)
        results.append(result)
        _print_line(result)
    return results


def _skip(why: str, metrics: dict[str, Any]) -> str:
    raise CheckSkipped(why)


def _print_line(result: Result) -> None:
    print(f"  {result.status:4}  {result.name}  ({result.seconds:.1f} s)", flush=True)


def selftest(
    url: str, args: argparse.Namespace, owns_server: bool
) -> tuple[list[Result], dict[str, Any]]:
    ctx = Context(
        Client(url, api_key=args.api_key), owns_server=owns_server, max_tokens=args.max_tokens
    )
    try:
        results = run_checks(ctx, args.only, args.real_model)
    finally:
        ctx.close()
    server = {"started_by_selftest": owns_server, **results[0].metrics}
    return results, server


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    launch_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = build_parser().parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.url and launch_args:
        print("error: give --url or launcher arguments after '--', not both", file=sys.stderr)
        return 2
    try:
        if args.url:
            results, server = selftest(args.url, args, owns_server=False)
        else:
            with started_server(launch_args) as url:
                results, server = selftest(url, args, owns_server=True)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report.print_table(
        results, f"omni-sglang selftest: {server.get('model')} ({server.get('engine')} engine)"
    )
    if args.json:
        args.json.write_text(json.dumps(report.as_json(results, server), indent=2, default=str))
        print(f"report: {args.json}")
    return 1 if any(r.status == "fail" for r in results) else 0
