"""Media into the tiny model's forward pass: tiny encoders, prefill_embeddings, logits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModelForCausalLM, AutoTokenizer

from omni_sglang.engines.cpu.multimodal import prefill_embeddings
from omni_sglang.plugin_api import MediaItem, ProcessedPrompt
from omni_sglang.tiny.encoders import build_encoders, feature_dims, load_encoders
from omni_sglang_nemotron.modality import NemotronOmniProcessor

PROMPT = (
    "<|im_start|>user\nWhat is in <image> and <so_embedding>?<|im_end|>\n<|im_start|>assistant\n"
)


@pytest.fixture(scope="module")
def tiny(tiny_model_path: Path) -> tuple[Any, Any, NemotronOmniProcessor, dict[str, Any]]:
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_path))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_path)).eval()
    config = json.loads((tiny_model_path / "config.json").read_text())
    encoders = load_encoders(tiny_model_path)
    assert encoders is not None
    return model, tokenizer, NemotronOmniProcessor.from_config(config, tokenizer), encoders


def image(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))


def audio(seed: int) -> Any:
    samples = np.random.default_rng(seed).standard_normal(16000).astype(np.float32)
    return type("Audio", (), {"samples": samples, "duration": 1.0, "sample_rate": 16000})()


def process(proc: NemotronOmniProcessor, seed: int) -> ProcessedPrompt:
    return proc.process(PROMPT, [MediaItem("image", image(seed)), MediaItem("audio", audio(0))])


def test_tiny_encoders_are_saved_and_deterministic(tiny_model_path: Path) -> None:
    config = json.loads((tiny_model_path / "config.json").read_text())
    dims = {"image": 768, "video": 1536, "audio": 16}
    assert config["mm_encoders"]["dims"] == dims == feature_dims(config)
    loaded = load_encoders(tiny_model_path)
    assert loaded is not None and set(loaded) == set(dims)
    rebuilt = build_encoders(dims, hidden_size=64, seed=0)
    for name, layer in loaded.items():
        assert isinstance(layer, torch.nn.Linear)
        assert (layer.in_features, layer.out_features) == (dims[name], 64)
        assert torch.equal(layer.weight, rebuilt[name].weight)
    assert not torch.equal(
        rebuilt["image"].weight, build_encoders(dims, 64, seed=1)["image"].weight
    )


def test_no_encoders_file_means_none(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert load_encoders(tmp_path) is None


def test_prefill_writes_encoder_outputs_at_the_positions(tiny: tuple) -> None:
    model, _, proc, encoders = tiny
    out = process(proc, 0)
    embeds = prefill_embeddings(model, out.input_ids, out.items, encoders)
    with torch.no_grad():
        expected = model.get_input_embeddings()(torch.tensor([out.input_ids])).clone()
        for item in out.items:
            expected[0, item.options["positions"]] = encoders[item.modality](item.data)
    assert embeds.shape == (1, len(out.input_ids), 64)
    assert torch.allclose(embeds, expected)
    media = {p for item in out.items for p in item.options["positions"]}
    text = [i for i in range(len(out.input_ids)) if i not in media]
    token_embeds = model.get_input_embeddings()(torch.tensor(out.input_ids))
    assert torch.equal(embeds[0, text], token_embeds[text].detach())
    assert not torch.allclose(embeds[0, sorted(media)], token_embeds[sorted(media)].detach())


def test_forward_pass_sees_the_image(tiny: tuple) -> None:
    model, _, proc, encoders = tiny

    def logits(seed: int) -> torch.Tensor:
        out = process(proc, seed)
        embeds = prefill_embeddings(model, out.input_ids, out.items, encoders)
        with torch.no_grad():
            return model(inputs_embeds=embeds).logits[0, -1]

    first, again, other = logits(0), logits(0), logits(1)
    assert torch.equal(first, again)
    assert (first - other).abs().max() > 1e-3  # another image, other next-token logits


def test_text_only_prefill_equals_input_ids(tiny: tuple) -> None:
    model, tokenizer, _, encoders = tiny
    ids = tokenizer("Hello there, what is new?", add_special_tokens=False).input_ids
    embeds = prefill_embeddings(model, ids, [], encoders)
    with torch.no_grad():
        by_ids = model(input_ids=torch.tensor([ids])).logits
        by_embeds = model(inputs_embeds=embeds).logits
    assert torch.allclose(by_ids, by_embeds, atol=1e-5)


def test_inconsistent_items_are_refused(tiny: tuple) -> None:
    model, _, proc, encoders = tiny
    out = process(proc, 0)
    item = out.items[0]
    short = MediaItem(item.modality, item.data, {"positions": item.options["positions"][:-1]})
    with pytest.raises(ValueError, match="positions"):
        prefill_embeddings(model, out.input_ids, [short], encoders)
    with pytest.raises(ValueError, match="no image encoder"):
        prefill_embeddings(model, out.input_ids, [item], {"audio": encoders["audio"]})
