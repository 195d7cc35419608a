"""``tiny-omni``: a tiny checkpoint of Nemotron 3 Nano Omni's own architecture.

``NemotronH_Nano_Omni_Reasoning_V3`` as SGLang's model code builds it
(``sglang/srt/models/nano_nemotron_vl.py``): the tiny Nemotron-H as its language model,
a RADIO ViT vision tower, the ``mlp1`` projector, a Parakeet conformer sound encoder and
its projection, at toy sizes, with the tiny tokenizer's real special tokens. SGLang's
processor and model do the media on this checkpoint; our CPU engine serves the plain
``tiny`` model, whose language model has the same weights (same builder, same seed),
and whose media settings are the same keys with the same values.

Weights are saved, not left to ``load_format="dummy"``: SGLang's dummy init
(U(-1e-3, 1e-3) for every tensor) makes every image give the same tokens and leaves
Parakeet's BatchNorm variance negative (NaN audio). Here matrices are N(0, 1/fan_in),
norms 1, biases 0, each tensor seeded by its name, and saving them also runs SGLang's
own ``load_weights`` name mapping on every start.

RADIO's width and depth come only from its timm model name (SGLang's
``VIT_TIMM_DIM_BY_NAME``): the smallest is ViT-S, 384 wide and 12 deep, with a position
table for 2048 px images. It is most of the checkpoint's ~190 MB.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from omni_sglang.tiny.encoders import TINY_AUDIO, TINY_VISION

ARCHITECTURE = "NemotronH_Nano_Omni_Reasoning_V3"
WEIGHTS_FILE = "model.safetensors"

#: ViT-S, the smallest RADIO SGLang knows: (width, depth, heads, MLP width), register
#: tokens (``register_multiple``) and RADIO's default largest image (position table).
RADIO_MODEL = "vit_small_patch16_224"
RADIO_DIMS = (384, 12, 6, 1536)
RADIO_REGISTERS = 8
RADIO_MAX_IMAGE = 2048
PROJECTOR_HIDDEN = 64

#: Parakeet at toy size (the real one is 1024 wide, 24 layers); 8 conv channels.
TINY_PARAKEET: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "subsampling_conv_channels": 8,
    "projection_hidden_size": 64,
    "projection_bias": False,
}
#: SGLang sizes Parakeet's positions from the config's ``max_model_len`` (8192 when
#: absent, as here and in ``tiny``: our processor reads the same key for its budget).
PARAKEET_MAX_LEN = 8192


def omni_config(llm_config: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's ``config.json``: the tiny model's media keys at top level (as the
    real checkpoint has them), its Nemotron-H config as ``llm_config``."""
    llm = {k: v for k, v in llm_config.items() if k not in TINY_VISION and k not in TINY_AUDIO}
    llm.pop("mm_encoders", None)
    config: dict[str, Any] = {**TINY_VISION, **TINY_AUDIO}
    config["vision_config"] = {
        **TINY_VISION["vision_config"],
        "args": {"model": RADIO_MODEL, "register_multiple": RADIO_REGISTERS},
        "preferred_resolution": [TINY_VISION["force_image_size"]] * 2,
    }
    config["sound_config"] = {**TINY_AUDIO["sound_config"], **TINY_PARAKEET}
    config.update(
        architectures=[ARCHITECTURE],
        model_type=ARCHITECTURE,
        llm_config=llm,
        vit_hidden_size=RADIO_DIMS[0],
        projector_hidden_size=PROJECTOR_HIDDEN,
        # V3's name for the sound placeholder; older configs call it sound_context_token.
        audio_context_token=TINY_VISION["sound_context_token"],
        eos_token_id=llm["eos_token_id"],
        pad_token_id=llm["pad_token_id"],
        vocab_size=llm["vocab_size"],
        dtype=llm.get("dtype", "float32"),
    )
    return config


def _seeded(name: str, seed: int) -> Any:
    import torch

    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "big") & (2**63 - 1))


def _init(name: str, shape: tuple[int, ...], seed: int) -> Any:
    """Scale-aware random values, seeded per tensor name: unit-scale activations
    through every layer, so outputs depend on the input."""
    import torch

    leaf = name.rsplit(".", 1)[-1]
    if leaf in ("bias", "running_mean"):
        return torch.zeros(shape)
    if leaf in ("running_var", "ls1", "ls2") or (len(shape) == 1 and "norm" in name):
        return torch.ones(shape)
    if leaf == "num_batches_tracked":
        return torch.zeros(shape, dtype=torch.long)
    fan_in = 1
    for dim in shape[1:]:
        fan_in *= dim
    scale = 0.02 if "pos_embed" in name else max(fan_in, 1) ** -0.5
    return torch.randn(shape, generator=_seeded(name, seed)) * scale


def radio_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """RADIO's tensors under the names of NVIDIA's checkpoint (SGLang's ``RadioModel.
    load_weights`` maps ``blocks`` / ``attn`` / ``qkv`` to its own module names)."""
    vision = config["vision_config"]
    patch = int(vision["patch_size"])
    width, depth, _, mlp = RADIO_DIMS
    pixels = 3 * patch * patch
    prefix = "vision_model.radio_model.model."
    shapes: dict[str, tuple[int, ...]] = {
        f"{prefix}patch_generator.pos_embed": (1, (RADIO_MAX_IMAGE // patch) ** 2, width),
        f"{prefix}patch_generator.embedder.weight": (width, pixels),
        f"{prefix}patch_generator.cls_token.token": (RADIO_REGISTERS, width),
        f"{prefix}patch_generator.video_embedder.weight": (
            width,
            pixels * int(vision.get("video_temporal_patch_size", 1)),
        ),
    }
    for layer in range(depth):
        block = f"{prefix}blocks.{layer}."
        shapes.update(
            {
                f"{block}ls1": (width,),
                f"{block}ls2": (width,),
                f"{block}attn.qkv.weight": (3 * width, width),
                f"{block}attn.qkv.bias": (3 * width,),
                f"{block}attn.proj.weight": (width, width),
                f"{block}attn.proj.bias": (width,),
                f"{block}mlp.fc1.weight": (mlp, width),
                f"{block}mlp.fc1.bias": (mlp,),
                f"{block}mlp.fc2.weight": (width, mlp),
                f"{block}mlp.fc2.bias": (width,),
                f"{block}norm1.weight": (width,),
                f"{block}norm1.bias": (width,),
                f"{block}norm2.weight": (width,),
                f"{block}norm2.bias": (width,),
            }
        )
    return shapes


def projector_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """``mlp1``: RMSNorm over the pixel-shuffled ViT features, then two linears."""
    shuffled = RADIO_DIMS[0] * round(1 / float(config["downsample_ratio"])) ** 2
    hidden = int(config["llm_config"]["hidden_size"])
    return {
        "mlp1.0.weight": (shuffled,),
        "mlp1.1.weight": (PROJECTOR_HIDDEN, shuffled),
        "mlp1.3.weight": (hidden, PROJECTOR_HIDDEN),
    }


def sound_tensors(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """transformers' own Parakeet encoder at the tiny size (its init, BatchNorm
    statistics included), and the projection SGLang puts after it."""
    import torch
    from transformers import ParakeetEncoder, ParakeetEncoderConfig

    sound = dict(config["sound_config"])
    projection_hidden = sound.pop("projection_hidden_size")
    sound.pop("projection_bias")
    for key in ("model_type", "sampling_rate", "hop_length"):
        sound.pop(key, None)
    encoder_config = ParakeetEncoderConfig(
        **sound,
        scale_input=False,
        attention_bias=False,
        # As SGLang sizes it: the model's max_model_len (8192 when the config, like
        # ours and tiny's, has none) + 1. Only a computed rotary table depends on it.
        max_position_embeddings=PARAKEET_MAX_LEN + 1,
    )
    torch.manual_seed(seed)
    encoder = ParakeetEncoder(encoder_config).eval()
    tensors = {f"sound_encoder.encoder.{k}": v for k, v in encoder.state_dict().items()}
    width, hidden = int(sound["hidden_size"]), int(config["llm_config"]["hidden_size"])
    for name, shape in {
        "sound_projection.norm.weight": (width,),
        "sound_projection.linear1.weight": (projection_hidden, width),
        "sound_projection.linear2.weight": (hidden, projection_hidden),
    }.items():
        tensors[name] = _init(name, shape, seed)
    return tensors


def build_tiny_omni(out_dir: Path, seed: int = 0) -> None:
    """Build the tiny Nemotron-H, then wrap it as the Omni checkpoint in ``out_dir``."""
    from safetensors.torch import load_file, save_file

    from omni_sglang.tiny.model import build_tiny_model

    llm_dir = out_dir / "llm"
    build_tiny_model(llm_dir, seed)
    config = omni_config(json.loads((llm_dir / "config.json").read_text()))
    tensors: dict[str, Any] = {
        f"language_model.{k}": v for k, v in load_file(str(llm_dir / WEIGHTS_FILE)).items()
    }
    shapes = {**radio_shapes(config), **projector_shapes(config)}
    tensors.update({name: _init(name, shape, seed) for name, shape in shapes.items()})
    tensors.update(sound_tensors(config, seed))
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out_dir / WEIGHTS_FILE))
    for path in llm_dir.iterdir():  # tokenizer, chat template, generation config
        if path.name not in ("config.json", WEIGHTS_FILE, "mm_encoders.safetensors"):
            shutil.move(str(path), out_dir / path.name)
    shutil.rmtree(llm_dir)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
