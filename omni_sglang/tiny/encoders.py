"""Tiny random media encoders for the tiny model: one linear layer per modality.

The real model runs a RADIO ViT (images, video tubelets) and a Parakeet conformer (audio)
plus projectors into the LLM's hidden size. The tiny model keeps only the last step: a
seeded ``nn.Linear`` from the host's per-token features to the hidden size, so media
really reach the forward pass (different images give different logits) at no cost.

Its media settings use the real checkpoint's ``config.json`` keys (SGLang's names) with
tiny values, written into the tiny model's ``config.json`` next to ``mm_encoders``, the
shapes of ``mm_encoders.safetensors``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

ENCODERS_FILE = "mm_encoders.safetensors"

#: Vision keys as in the real checkpoint: 32 px tiles, 8 px patches, 2x2 pixel shuffle,
#: dynamic resolution of 16..256 patches (4..64 tokens an image), 2-frame tubelets of
#: 64 patches (16 tokens each). Real: 512, 16, 0.5, 1024..13312, 2, 1024.
TINY_VISION: dict[str, Any] = {
    "force_image_size": 32,
    "patch_size": 8,
    "downsample_ratio": 0.5,
    "use_thumbnail": True,
    "ps_version": "v2",
    "norm_mean": [0.48145466, 0.4578275, 0.40821073],
    "norm_std": [0.26862954, 0.26130258, 0.27577711],
    "video_pruning_rate": 0.0,
    "img_context_token": "<image>",
    "img_start_token": "<img>",
    "img_end_token": "</img>",
    "video_context_token": "<video>",
    "sound_context_token": "<so_embedding>",
    "vision_config": {
        "patch_size": 8,
        "min_num_patches": 16,
        "max_num_patches": 256,
        "video_temporal_patch_size": 2,
        "video_target_num_patches": 64,
        "video_maintain_aspect_ratio": True,
        "separate_video_embedder": True,
    },
}

#: Parakeet's keys: 16 kHz, 10 ms mel hop, 8x subsampling -> 12.5 tokens/s like the real
#: model; 16 bands instead of 128 mel bins.
TINY_AUDIO: dict[str, Any] = {
    "sound_config": {
        "model_type": "parakeet",
        "sampling_rate": 16000,
        "hop_length": 160,
        "subsampling_factor": 8,
        "subsampling_conv_kernel_size": 3,
        "subsampling_conv_stride": 2,
        "num_mel_bins": 16,
    }
}


def feature_dims(config: dict[str, Any]) -> dict[str, int]:
    """Per-token feature length of each modality, as the host computes features:
    the pixels of the shuffled patches (times the tubelet frames), the audio bands."""
    vision = config.get("vision_config") or {}
    patch = int(vision.get("patch_size", config.get("patch_size", 16)))
    shuffle = round(1 / float(config.get("downsample_ratio", 0.5)))
    image = shuffle**2 * 3 * patch**2
    dims = {
        "image": image,
        "video": image * max(1, int(vision.get("video_temporal_patch_size", 1))),
    }
    sound = config.get("sound_config")
    if sound:
        dims["audio"] = int(sound.get("num_mel_bins", 128))
    return dims


def build_encoders(dims: dict[str, int], hidden_size: int, seed: int = 0) -> dict[str, Any]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    encoders: dict[str, Any] = {}
    for name in sorted(dims):
        layer = torch.nn.Linear(dims[name], hidden_size)
        with torch.no_grad():
            # Unit-variance features give outputs of about unit scale.
            layer.weight.normal_(0.0, dims[name] ** -0.5, generator=generator)
            layer.bias.zero_()
        encoders[name] = layer.eval()
    return encoders


def save_tiny_encoders(model_dir: Path, *, hidden_size: int, seed: int = 0) -> None:
    """Add the media keys to ``config.json`` and write ``mm_encoders.safetensors``."""
    from safetensors.torch import save_file

    path = Path(model_dir) / "config.json"
    config = json.loads(path.read_text())
    config.update(TINY_VISION)
    config.update(TINY_AUDIO)
    dims = feature_dims(config)
    encoders = build_encoders(dims, hidden_size, seed)
    tensors = {
        f"{name}.{key}": value.contiguous()
        for name, layer in encoders.items()
        for key, value in layer.state_dict().items()
    }
    save_file(tensors, str(Path(model_dir) / ENCODERS_FILE))
    config["mm_encoders"] = {"file": ENCODERS_FILE, "hidden_size": hidden_size, "dims": dims}
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def load_encoders(model_dir: str | Path) -> dict[str, torch.nn.Module] | None:
    """The encoders of a model folder by modality, or None if it has none."""
    import torch
    from safetensors.torch import load_file

    config = json.loads((Path(model_dir) / "config.json").read_text())
    spec = config.get("mm_encoders")
    if not spec or not (Path(model_dir) / spec["file"]).exists():
        return None
    encoders: dict[str, torch.nn.Module] = {}
    state = load_file(str(Path(model_dir) / spec["file"]))
    for name, dim in spec["dims"].items():
        layer = torch.nn.Linear(int(dim), int(spec["hidden_size"]))
        layer.load_state_dict({k: state[f"{name}.{k}"] for k in ("weight", "bias")})
        encoders[name] = layer.eval()
    return encoders
