"""Start-up errors are one clear line and a non-zero exit, before the socket opens."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from omni_sglang.config import load_config
from omni_sglang.errors import ConfigError
from omni_sglang.launch import parse_cli
from tests.conftest import CACHE


def launch(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**(env or os.environ), "OMNI_SGLANG_TINY_MODEL_DIR": str(CACHE)}
    return subprocess.run(
        [sys.executable, "-m", "omni_sglang.launch", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "warp-drive"], "no engines plugin named 'warp-drive'; installed: cpu"),
        (["--reasoning-parser", "nope"], "no reasoning_parsers plugin named 'nope'"),
        (["--engine", "sglang", "--model", "tiny-gpt"], "unknown built-in model 'tiny-gpt'"),
        (["--config", "/nonexistent.toml"], "not found"),
        (["--log-level", "loud"], "invalid choice"),
    ],
)
def test_startup_errors(args: list[str], message: str) -> None:
    result = launch(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "suggestion"),
    [
        (["--model-p", "x"], "--model-p (did you mean --model-path?)"),  # no abbreviations
        (["--modle", "tiny"], "--modle (did you mean --model?)"),  # a typo
        (["--served-name=x"], "--served-name=x (did you mean --served-model-name?)"),
        (["--quux-zed"], "unrecognized arguments: --quux-zed\n"),  # nothing close
    ],
)
def test_unknown_or_abbreviated_flag_names_the_closest(
    args: list[str], suggestion: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_cli(args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "error: unrecognized arguments: " in err and suggestion in err


def test_sglang_engine_without_gpu_or_platform_plugin_says_what_to_install() -> None:
    # SGLANG_PLUGINS is SGLang's allow-list, over its platform plugins too: listing none
    # of ours leaves this machine with no way to run SGLang.
    result = launch("--engine", "sglang", env={**os.environ, "SGLANG_PLUGINS": "omni_nemotron"})
    assert result.returncode == 2
    assert "needs a CUDA GPU or an SGLang platform plugin" in result.stderr
    assert "plugins/sglang-cpu" in result.stderr and "Traceback" not in result.stderr


def test_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = launch("--host", "127.0.0.1", "--port", str(port))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_list_plugins_shows_sources() -> None:
    result = launch("--list-plugins")
    assert result.returncode == 0
    assert "omni_sglang.engines.cpu.plugin:CpuEnginePlugin" in result.stdout
    assert "omni-sglang-testplug" in result.stdout


@pytest.mark.sglang
def test_sglang_rejects_bad_flags_with_its_own_message(tmp_path: Path) -> None:
    from omni_sglang.engines.sglang_backend import build_server_args, server_args_argv

    config = load_config(
        {"model_path": "/models/x", "sglang_args": ["--tp-size", "2", "--no-such-flag"]},
        environ={},
    )
    with pytest.raises(ConfigError, match="no-such-flag"):
        build_server_args(config)
    good = load_config({"model_path": "/models/x", "sglang_args": ["--tp-size", "2"]}, environ={})
    argv = server_args_argv(good)
    assert argv[:2] == ["--model-path", "/models/x"] and "--enable-custom-logit-processor" in argv
    args = build_server_args(good)
    assert args.tp_size == 2 and args.enable_custom_logit_processor
