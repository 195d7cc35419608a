"""SGLang failing to start: its cause in one ``error:`` line with the fix, and no SGLang
process left behind.

SGLang's scheduler catches its own start-up exception, logs the traceback and SIGQUITs
its parent, whose default action is to die at once (a core dump, no message); the
parent's ``sglang.Engine()`` then raises "scheduler died during initialization" without
the cause. So a hook in the scheduler (``record_scheduler_failure``, registered by
``sglang_hooks``) writes the cause to the file ``REPORT`` names, the engine takes the
SIGQUIT while it starts, and ``startup_error`` turns both into one message.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from omni_sglang.errors import StartupError

#: The file the scheduler writes its start-up exception to (set by the sglang engine).
REPORT = "OMNI_SGLANG_STARTUP_REPORT"

_NO_ROOM = (
    "SGLang's KV cache and state do not fit in the memory it may use: raise "
    "--mem-fraction-static, or lower --max-running-requests / --context-length"
)
#: A cause's tell-tale text -> what to do about it.
FIXES = (
    (
        "EADDRINUSE",
        "a port SGLang's scheduler binds (--nccl-port, or the one in --dist-init-addr) is "
        "in use: free it, or leave --nccl-port out and SGLang picks a free one",
    ),
    ("Not enough", _NO_ROOM),
    ("Loaded weights leave no GPU memory", _NO_ROOM),  # SGLang's words for a CPU's RAM too
    (
        "scheduler died during initialization (exit code: -9)",
        "the OS killed it, most likely out of memory: lower --max-total-tokens or "
        "--mem-fraction-static, or free memory",
    ),
)
#: A cause is cut to this many characters: one line, not a traceback.
CAUSE_CHARS = 400


def record_scheduler_failure(original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """AROUND ``Scheduler.__init__`` in SGLang's scheduler process."""
    try:
        return original(*args, **kwargs)
    except Exception as exc:
        report = os.environ.get(REPORT)
        if report:
            with contextlib.suppress(OSError):
                Path(report).write_text(f"{type(exc).__name__}: {exc}")
        raise


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= CAUSE_CHARS else line[: CAUSE_CHARS - 3] + "..."


def startup_error(exc: BaseException, report: Path) -> StartupError:
    """The error the server exits with: the scheduler's own cause when it wrote one,
    else what ``sglang.Engine()`` raised; and a fix for the causes known."""
    written = report.read_text() if report.exists() else ""
    cause = _one_line(written or f"{type(exc).__name__}: {exc}")
    said = f"{cause} {exc}"
    fix = next((fix for key, fix in FIXES if key in said), "SGLang's log above has the details")
    return StartupError(f"SGLang did not start: {cause}; {fix}")


def child_pids() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def kill_new_children(before: set[int]) -> None:
    """SGLang's processes that a failed start left (not multiprocessing's resource
    tracker, which serves the whole process)."""
    started = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    for process in started:
        with contextlib.suppress(psutil.Error):
            if "resource_tracker" not in " ".join(process.cmdline()):
                process.kill()
    psutil.wait_procs(started, timeout=5)
