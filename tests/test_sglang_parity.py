"""SGLang's runtime on this CPU computes what transformers computes: greedy output token
for token, single and batched, for both tiny models (float32). The guard on every SGLang
upgrade: the CPU platform plugin replaces SGLang internals (Mamba-2 kernels, the relu2
MoE), and a wrong replacement shows here first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.conftest import CACHE, Server

pytestmark = pytest.mark.sglang

NEW_TOKENS = 24
#: Lengths across the Mamba chunk size (32) and the conv width, and a one-token prompt.
PROMPTS = ["Hi", "Hello, how are you today? " * 3, "The quick brown fox jumps. " * 12]


def greedy_reference(model_path: Path, prompts: list[list[int]]) -> list[list[int]]:
    model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=torch.float32).eval()
    outputs = []
    for ids in prompts:
        out = model.generate(
            torch.tensor([ids]), max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None
        )
        outputs.append(out[0, len(ids) :].tolist())
    return outputs


def sglang_greedy(server: Server, prompts: list[list[int]] | list[int]) -> Any:
    body = {
        "input_ids": prompts,
        "sampling_params": {"max_new_tokens": NEW_TOKENS, "temperature": 0, "ignore_eos": True},
    }
    resp = httpx.post(server.url + "/generate", json=body, timeout=120)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.mark.parametrize("model", ["tiny", "tiny-llama"])
def test_sglang_greedy_equals_transformers(model: str, request: pytest.FixtureRequest) -> None:
    from omni_sglang.tiny.model import ensure_tiny_model

    server: Server = request.getfixturevalue(
        "sglang_server" if model == "tiny" else "sglang_llama_server"
    )
    path = ensure_tiny_model(CACHE, model)
    tok = AutoTokenizer.from_pretrained(str(path))
    prompts = [tok(p).input_ids for p in PROMPTS]
    expected = greedy_reference(path, prompts)
    batched = sglang_greedy(server, prompts)
    assert [out["output_ids"] for out in batched] == expected
    singles = [sglang_greedy(server, ids)["output_ids"] for ids in prompts]
    assert singles == expected
