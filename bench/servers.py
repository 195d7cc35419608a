"""The servers a benchmark starts: this one and SGLang's own ``launch_server``, each a
subprocess on a free local port with its log in a file, and the exact SGLang command line
our server runs SGLang with (its ``--dry-run``), so the peer gets the same model and flags.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

OURS = [sys.executable, "-m", "omni_sglang.launch"]
READY_TIMEOUT_S = 600
EXIT_TIMEOUT_S = 120


def sglang_argv(our_flags: list[str], sglang_flags: list[str]) -> list[str]:
    """The ``sglang.launch_server`` arguments our server derives from our flags and the
    SGLang flags it is given, without host and port."""
    dry_run = subprocess.run(
        [*OURS, *our_flags, "--dry-run", "--", *sglang_flags],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(dry_run.stdout)["sglang_argv"])


class Supervised:
    """One server process: started, waited on until ready, stopped."""

    def __init__(self, name: str, argv: list[str], port: int, log: Path, ready_path: str):
        self.name, self.argv, self.port, self.log = name, argv, port, log
        self.ready_path = ready_path
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> float:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        return time.monotonic()

    async def wait_ready(self) -> float:
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited; see {self.log}")
                try:
                    if (await client.get(self.url + self.ready_path)).status_code == 200:
                        return time.monotonic()
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready in {READY_TIMEOUT_S} s; see {self.log}")

    def children(self) -> list[psutil.Process]:
        assert self.proc is not None
        return psutil.Process(self.proc.pid).children(recursive=True)

    def scheduler(self) -> psutil.Process:
        for child in self.children():
            if "sglang::scheduler" in " ".join(child.cmdline()):
                return child
        raise RuntimeError(f"{self.name}: no sglang::scheduler process")

    async def wait_exit(self) -> tuple[float | None, int | None]:
        assert self.proc is not None
        deadline = time.monotonic() + EXIT_TIMEOUT_S
        while self.proc.poll() is None:
            if time.monotonic() > deadline:  # a hung server: the supervisor's SIGKILL
                self.proc.kill()
                self.proc.wait()
                return None, None
            await asyncio.sleep(0.05)
        return time.monotonic(), self.proc.returncode

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
