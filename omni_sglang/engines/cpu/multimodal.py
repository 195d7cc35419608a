"""Media into the CPU engine's forward pass: prompt embeddings with encoder outputs.

A modality processor returns the prompt's ``input_ids`` with one placeholder token per
media token, and per item its features (``data``, [tokens, feature_dim]) and the
placeholder ``options["positions"]``. Here the items go through the model's encoders and
replace the token embeddings at those positions; the engine prefills with
``inputs_embeds=`` (transformers' ``generate`` refuses them for Nemotron-H, so the
engine's own step loop passes them on the prefill step only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from omni_sglang.plugin_api import MediaItem


def encode_item(item: MediaItem, encoders: Mapping[str, Any]) -> torch.Tensor:
    """The item's embeddings [tokens, hidden] from the encoder of its modality."""
    encoder = encoders.get(item.modality)
    if encoder is None:
        raise ValueError(f"this model has no {item.modality} encoder")
    features = torch.as_tensor(item.data)
    weight = next(encoder.parameters(), None)
    if weight is not None:
        features = features.to(dtype=weight.dtype, device=weight.device)
    return encoder(features)


@torch.no_grad()
def prefill_embeddings(
    model: Any,
    input_ids: list[int],
    items: Sequence[MediaItem],
    encoders: Mapping[str, Any] | None,
) -> torch.Tensor:
    """``inputs_embeds`` [1, len(input_ids), hidden]: token embeddings, with each item's
    encoder output written at its ``options["positions"]``."""
    embed = model.get_input_embeddings()
    ids = torch.tensor([input_ids], dtype=torch.long, device=embed.weight.device)
    embeds = embed(ids).clone()
    if not items:
        return embeds
    if not encoders:
        raise ValueError("this model has no media encoders")
    for item in items:
        positions = list(item.options.get("positions", ()))
        out = encode_item(item, encoders)
        if out.shape[0] != len(positions):
            raise ValueError(
                f"{item.modality} item has {out.shape[0]} embeddings for {len(positions)} positions"
            )
        if not positions:
            continue
        if max(positions) >= len(input_ids) or min(positions) < 0:
            raise ValueError(f"{item.modality} item positions fall outside the prompt")
        index = torch.tensor(positions, dtype=torch.long, device=embeds.device)
        embeds[0, index] = out.to(dtype=embeds.dtype, device=embeds.device)
    return embeds
