"""When the engine cannot start: one ``error:`` line that names the cause and the fix, exit
status 2 (restarting as is will not help), and no SGLang process left behind. The faults
are real: a port SGLang's scheduler must bind is held, SGLang is given too little memory,
the checkpoint folder is missing or broken, the platform plugin refuses the installed
SGLang. Hard timeouts: a hang fails the test."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from omni_sglang import launch
from tests.conftest import ENGINES, Server, engine_args

#: The issue's bound, from the scheduler's failure to the server's exit.
EXIT_WITHIN_S = 60.0
#: SGLang's scheduler logs this when its start-up raised.
SCHEDULER_FAILED = "Scheduler hit an exception"


def _error_lines(server: Server) -> list[str]:
    return [line for line in server.log().splitlines() if line.startswith("error:")]


def _fails_to_start(server: Server) -> tuple[int, float, list[Any]]:
    """Exit status, seconds from the scheduler's failure to the exit, children seen."""
    children: dict[int, psutil.Process] = {}
    failed_at = None
    deadline = time.monotonic() + 300
    while server.proc.poll() is None:
        assert time.monotonic() < deadline, f"still running:\n{server.log()}"
        for child in psutil.Process(server.proc.pid).children(recursive=True):
            children.setdefault(child.pid, child)
        if failed_at is None and SCHEDULER_FAILED in server.log():
            failed_at = time.monotonic()
        time.sleep(0.2)
    assert failed_at is not None, server.log()
    return server.proc.returncode, time.monotonic() - failed_at, list(children.values())


def _check_clean_exit(server: Server, fragments: tuple[str, ...]) -> None:
    returncode, exit_after, children = _fails_to_start(server)
    assert returncode == 2, server.log()
    assert exit_after < EXIT_WITHIN_S
    errors = _error_lines(server)
    assert len(errors) == 1, server.log()
    assert all(f in errors[0] for f in fragments), errors[0]
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"orphaned: {[p.pid for p in alive]}"


def test_a_taken_scheduler_port_is_named_with_the_fix(module_server_factory) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        args = engine_args("sglang", "--no-warmup")
        server = module_server_factory(*args, "--nccl-port", str(port), ready=False)
        _check_clean_exit(server, ("SGLang did not start", "EADDRINUSE", "--nccl-port"))


def test_too_little_memory_for_sglangs_caches_is_named_with_the_fix(module_server_factory) -> None:  # type: ignore[no-untyped-def]
    args = ("--engine", "sglang", "--no-warmup", "--", "--mem-fraction-static", "0.0001")
    server = module_server_factory(*args, ready=False)
    # SGLang's words depend on which pool failed first; the fix is ours, the same for both.
    fix = "do not fit in the memory it may use"
    _check_clean_exit(server, ("SGLang did not start", fix, "--mem-fraction-static"))


def _broken_checkpoint(tmp_path: Path, case: str) -> str:
    if case == "missing":
        return str(tmp_path / "nowhere")
    folder = tmp_path / case
    folder.mkdir()
    if case == "broken_config":
        (folder / "config.json").write_text("{not json")
    return str(folder)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("missing", "does not exist"),
        ("no_config", "not a checkpoint folder"),
        ("broken_config", "cannot be read"),
    ],
)
def test_a_missing_or_broken_checkpoint_is_refused_before_loading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], engine: str, case: str, fragment: str
) -> None:
    path = _broken_checkpoint(tmp_path, case)
    assert launch.main(["--engine", engine, "--port", "0", "--model-path", path]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and fragment in error and "\n" not in error


def test_a_platform_plugin_refusing_this_sglang_is_one_error_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from omni_sglang_cpu import SGLANG_VERSION, activation, version

    monkeypatch.delenv("SGLANG_PLATFORM", raising=False)
    monkeypatch.setattr(activation, "accelerator_present", lambda: False)
    monkeypatch.setattr(version, "installed_sglang_version", lambda: "0.6.0")
    assert launch.main(["--engine", "sglang", "--port", "0"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: SGLang platform plugin 'omni_cpu' refused to start")
    assert f"sglang=={SGLANG_VERSION}" in error and "\n" not in error
