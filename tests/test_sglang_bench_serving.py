"""SGLang's own load generator, ``python -m sglang.bench_serving``, unchanged against our
server: native ``/generate`` and both OpenAI routes, on both engines, with its
``random-ids`` dataset (token ids from the tokenizer: no hub download)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TINY, Server

pytestmark = pytest.mark.sglang
PROMPTS = 6


@pytest.mark.parametrize("backend", ["sglang", "sglang-oai", "sglang-oai-chat"])
def test_every_request_succeeds(
    engine_server: Server, tiny_model_path: Path, tmp_path: Path, backend: str
) -> None:
    out = tmp_path / "result.jsonl"
    argv = [
        sys.executable,
        "-m",
        "sglang.bench_serving",
        f"--backend={backend}",
        f"--base-url={engine_server.url}",
        f"--model={TINY}",
        f"--tokenizer={tiny_model_path}",
        "--dataset-name=random-ids",
        f"--num-prompts={PROMPTS}",
        "--random-input-len=32",
        "--random-output-len=8",
        "--max-concurrency=3",
        f"--output-file={out}",
    ]
    # Offline: it would look the model name up on the hub first (45 s of retries here).
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(argv, capture_output=True, text=True, timeout=240, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text().splitlines()[-1])
    assert result["completed"] == PROMPTS, run.stdout[-3000:]
    assert result["total_output_tokens"] >= PROMPTS  # each request generated
