"""The tiny Nemotron-H model served by default: random weights, built locally, in seconds.

Same architecture family as Nemotron 3 Nano Omni's LLM (Mamba-2, MoE and attention
layers, ``NemotronHForCausalLM``), scaled down so it runs fast on two CPU cores. The
build is deterministic (fixed seed, fixed tokenizer corpus) and atomic (built in a temp
folder, then renamed), so concurrent first starts cannot see a half-written model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Bump when the architecture, corpus or template changes: a new cache folder follows.
TINY_MODEL_VERSION = "2"  # 2: media keys + mm_encoders.safetensors
TINY_MAX_MODEL_LEN = 16384

TINY_ARCH: dict[str, Any] = {
    "hidden_size": 64,
    # Mamba, MoE and attention like the real model (its 52 layers are 23 Mamba-2,
    # 23 MoE and 6 attention); six layers keep all three kinds.
    "layers_block_type": [
        "linear_attention",
        "moe",
        "full_attention",
        "moe",
        "linear_attention",
        "moe",
    ],
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "intermediate_size": 128,
    "mamba_num_heads": 4,
    "mamba_head_dim": 16,
    "ssm_state_size": 16,
    "n_groups": 1,
    "expand": 1,
    "conv_kernel": 4,
    "chunk_size": 32,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "moe_intermediate_size": 64,
    "moe_shared_expert_intermediate_size": 64,
    "max_position_embeddings": TINY_MAX_MODEL_LEN,
    "tie_word_embeddings": False,
}


def tiny_model_dir(cache_root: str | os.PathLike[str]) -> Path:
    digest = hashlib.sha256(
        json.dumps([TINY_MODEL_VERSION, TINY_ARCH], sort_keys=True).encode()
    ).hexdigest()[:10]
    return Path(cache_root) / f"tiny-nemotron-h-{digest}"


def ensure_tiny_model(cache_root: str | os.PathLike[str]) -> Path:
    """Return the folder of the tiny model, building it first if it is not there."""
    target = tiny_model_dir(cache_root)
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    logger.info("building the tiny Nemotron-H model into %s ...", target)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        build_tiny_model(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "config.json").exists():  # lost a race to a twin: fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("tiny model built in %.1f s", time.monotonic() - started)
    return target


def build_tiny_model(out_dir: Path, seed: int = 0) -> None:
    import torch
    from transformers import AutoTokenizer, GenerationConfig, NemotronHConfig, NemotronHForCausalLM

    from omni_sglang.tiny.tokenizer import build_tokenizer

    build_tokenizer(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(out_dir))
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    vocab_size = -(-len(tokenizer) // 64) * 64  # padded like real checkpoints
    config = NemotronHConfig(
        vocab_size=vocab_size,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        eos_token_id=eos_id,
        **TINY_ARCH,
    )
    config.architectures = ["NemotronHForCausalLM"]
    torch.manual_seed(seed)
    model = NemotronHForCausalLM(config).eval()
    model.save_pretrained(str(out_dir), safe_serialization=True)
    GenerationConfig(eos_token_id=eos_id, pad_token_id=tokenizer.pad_token_id).save_pretrained(
        str(out_dir)
    )
    # Media: the checkpoint's vision/sound keys (tiny values) and tiny linear encoders.
    from omni_sglang.tiny.encoders import save_tiny_encoders

    save_tiny_encoders(out_dir, hidden_size=TINY_ARCH["hidden_size"], seed=seed)
