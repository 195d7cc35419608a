"""``tiny-omni``: Nemotron 3 Nano Omni's own architecture at toy size, for SGLang's model
code. Built deterministically; SGLang's config and model classes take it unchanged and
its own ``load_weights`` fills every tensor; its language model is ``tiny``'s and its
media settings are the ones our modality processor reads from ``tiny``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from omni_sglang.tiny.model import ensure_tiny_model
from omni_sglang.tiny.omni import build_tiny_omni
from omni_sglang_nemotron.mm_config import media_config
from tests.conftest import CACHE, ROOT
from tests.test_tiny_model import _digest


@pytest.fixture(scope="module")
def omni_path() -> Path:
    return ensure_tiny_model(CACHE, "tiny-omni")


def test_build_is_deterministic(tmp_path: Path, omni_path: Path) -> None:
    fresh = tmp_path / "again"
    fresh.mkdir()
    build_tiny_omni(fresh)
    assert _digest(fresh) == _digest(omni_path)


def test_language_model_is_the_tiny_models(omni_path: Path, tiny_model_path: Path) -> None:
    omni = load_file(str(omni_path / "model.safetensors"))
    tiny = load_file(str(tiny_model_path / "model.safetensors"))
    assert tiny and all(omni[f"language_model.{k}"].equal(v) for k, v in tiny.items())


def test_media_settings_equal_the_tiny_models(omni_path: Path, tiny_model_path: Path) -> None:
    """What makes the two engines' prompts comparable: our processor derives the same
    tiles, tubelets, audio rate and placeholder tokens from both checkpoints."""
    omni = json.loads((omni_path / "config.json").read_text())
    tiny = json.loads((tiny_model_path / "config.json").read_text())
    assert media_config(omni) == media_config(tiny)


def test_sglangs_config_class_reads_it(omni_path: Path) -> None:
    from sglang.srt.configs.nano_nemotron_vl import NemotronH_Nano_Omni_Reasoning_V3_Config

    config = json.loads((omni_path / "config.json").read_text())
    config.pop("model_type")
    hf = NemotronH_Nano_Omni_Reasoning_V3_Config(**config)
    radio = hf.create_radio_config()
    assert (radio.hidden_size, radio.patch_size) == (384, 8)
    assert hf.llm_config.hidden_size == 64 and hf.sound_config.hidden_size == 32


def test_sglangs_load_weights_fills_every_tensor(omni_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.omni_load_check", str(omni_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["unloaded"] == []
    towers = ("vision_model.", "mlp1.", "sound_encoder.", "language_model.")
    assert all(any(n.startswith(t) for n in result["loaded"]) for t in towers)
