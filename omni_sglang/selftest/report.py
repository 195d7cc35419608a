"""The selftest's two outputs: a table for the terminal (rich) and a JSON report to send
us, with the versions that matter for a bug report and nothing secret (no API key, no
prompt text beyond the checks' own)."""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import subprocess
from typing import Any

from omni_sglang import __version__
from omni_sglang.selftest.result import Result

STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow"}


def versions() -> dict[str, Any]:
    """This machine's: ours, SGLang's, torch's, CUDA's, the GPUs and their driver."""
    found: dict[str, Any] = {"omni_sglang": __version__, "python": platform.python_version()}
    for package in ("sglang", "torch", "transformers"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    found["platform"] = platform.platform()
    try:
        import torch

        found["cuda"] = torch.version.cuda
        found["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception as exc:  # a broken CUDA install is worth reporting, not crashing on
        found["gpus"] = f"unknown: {exc}"
    found["driver"] = _nvidia_driver()
    return found


def _nvidia_driver() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    run = subprocess.run(
        ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return (
        run.stdout.strip().splitlines()[0] if run.returncode == 0 and run.stdout.strip() else None
    )


def summary(results: list[Result]) -> dict[str, int]:
    return {s: sum(r.status == s for r in results) for s in ("pass", "fail", "skip")}


def as_json(results: list[Result], server: dict[str, Any]) -> dict[str, Any]:
    return {
        "passed": not any(r.status == "fail" for r in results),
        "summary": summary(results),
        "server": server,
        "versions": versions(),
        "checks": [
            {
                "name": r.name,
                "status": r.status,
                "detail": r.detail,
                "seconds": round(r.seconds, 3),
                "real_model": r.real_model,
                "metrics": r.metrics,
            }
            for r in results
        ],
    }


def print_table(results: list[Result], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("check", "result", "seconds", "detail"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for r in results:
        name = r.name + (" (real model)" if r.real_model else "")
        status = f"[{STYLE[r.status]}]{r.status.upper()}[/]"
        table.add_row(name, status, f"{r.seconds:.2f}", r.detail)
    counts = summary(results)
    console = Console(width=max(Console().width, 120))
    console.print(table)
    console.print(", ".join(f"{n} {s}" for s, n in counts.items()))
