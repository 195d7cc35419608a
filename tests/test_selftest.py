"""``omni-sglang selftest`` on both engines on this CPU: every check that does not need
a real model passes, the answer checks say why they did not run, and a failing check
fails the run. Run as a user runs it (a subprocess, the ``omni-sglang`` entry point)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from omni_sglang.selftest.suite import ANSWER_CHECKS, CHECKS
from tests.conftest import CACHE, ENGINES, Server, engine_args

pytestmark = pytest.mark.timeout(900)


def selftest(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    out = tmp_path / "report.json"
    run = subprocess.run(
        [sys.executable, "-m", "omni_sglang", "selftest", "--json", str(out), *args],
        capture_output=True,
        text=True,
        timeout=850,
        env={**os.environ, "OMNI_SGLANG_TINY_MODEL_DIR": str(CACHE)},
    )
    report = json.loads(out.read_text()) if out.exists() else {}
    return run.returncode, report, run.stdout + run.stderr


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


@pytest.mark.parametrize("engine", ENGINES)
def test_every_check_passes_on_a_server_it_starts(tmp_path: Path, engine: str) -> None:
    code, report, output = selftest(tmp_path, "--", *engine_args(engine, "--no-warmup"))
    got = statuses(report)
    assert got == {name: "pass" for name in CHECKS} | dict.fromkeys(ANSWER_CHECKS, "skip"), output
    assert code == 0 and report["passed"], output
    assert report["server"]["engine"] == engine and report["server"]["started_by_selftest"]
    assert report["versions"]["sglang"] and report["versions"]["torch"]
    skipped = [c for c in report["checks"] if c["status"] == "skip"]
    assert all(c["real_model"] and "built-in random model" in c["detail"] for c in skipped)
    assert "PASS" in output and "omni-sglang selftest" in output  # the table


def test_against_a_running_server(tmp_path: Path, tiny_server: Server) -> None:
    """--url: that server's SSRF guard is on, so media by URL from here is a skip that
    says how to check it, not a failure."""
    code, report, output = selftest(
        tmp_path, "--url", tiny_server.url, "--only", "images", "--only", "URL"
    )
    assert statuses(report) == {
        "health and metadata": "pass",
        "images": "pass",
        "media by URL": "skip",
    }, output
    assert code == 0 and "--allow-private-media-hosts" in output


def test_a_failing_check_fails_the_run_and_keeps_secrets_out(tmp_path: Path) -> None:
    """Without a tool parser the server refuses tool_choice: that check fails, the exit
    status is 1, and the report holds no API key."""
    key = "sk-selftest-secret"
    code, report, output = selftest(
        tmp_path,
        "--api-key",
        key,
        "--only",
        "tool",
        "--",
        "--engine",
        "cpu",
        "--no-warmup",
        "--tool-parser",
        "",
        "--api-key",
        key,
    )
    assert statuses(report) == {"health and metadata": "pass", "tool calls": "fail"}, output
    assert code == 1 and not report["passed"]
    assert key not in (tmp_path / "report.json").read_text()


def test_answer_checks_judge_the_answer(tmp_path: Path, tiny_server: Server) -> None:
    """Forced on, the answer checks run and fail on the random model: they judge what it
    says (the spoken digit needs espeak-ng to make its sample; without it, a skip naming
    it), after the server took the request."""
    code, report, output = selftest(
        tmp_path, "--url", tiny_server.url, "--only", "answer", "--real-model", "yes"
    )
    spoken = "fail" if shutil.which("espeak-ng") else "skip"
    assert statuses(report) == {
        "health and metadata": "pass",
        "answer: image colour": "fail",
        "answer: arithmetic": "fail",
        "answer: spoken digit": spoken,
    }, output
    for check in report["checks"][1:]:
        assert check["real_model"]
        assert (
            (", answered " in check["detail"])
            if check["status"] == "fail"
            else ("espeak-ng" in check["detail"])
        )
    assert code == 1
