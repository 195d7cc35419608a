"""One decode step for many sequences at once: per-sequence caches stacked into a batch.

Each sequence keeps its own ``DynamicCache`` (so admission, abort and finish stay
per-request). For a decode step the caches are stacked: recurrent (Mamba) states are
concatenated along the batch axis; attention keys/values of different lengths are
left-padded to the longest and masked out with a 2-D attention mask. After the step
the new states are split back. Stacking copies the KV of the attention layers each
step, which is cheap for the hybrid models this engine targets (Nemotron-H keeps KV
in only a few of its layers) and turns C single-row forwards into one C-row forward.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer, LinearAttentionLayer


def _kv_length(cache: DynamicCache) -> int:
    for layer in cache.layers:
        keys: Any = getattr(layer, "keys", None)
        if isinstance(layer, DynamicLayer) and keys is not None:
            return int(keys.shape[-2])
    return 0


def batched_decode(
    model: Any, caches: list[DynamicCache], last_tokens: list[int], positions: list[int]
) -> torch.Tensor:
    """Run one decode step for all sequences; returns logits [batch, vocab]."""
    if len(caches) == 1:  # nothing to stack
        out = model(
            input_ids=torch.tensor([last_tokens], dtype=torch.long).T,
            past_key_values=caches[0],
            use_cache=True,
        )
        return out.logits[:, -1].float()

    lengths = [_kv_length(c) for c in caches]
    longest = max(lengths)
    batch = DynamicCache(config=model.config)
    for index, layer in enumerate(batch.layers):
        parts = [c.layers[index] for c in caches]
        if isinstance(layer, LinearAttentionLayer) and not isinstance(layer, DynamicLayer):
            _stack_linear(layer, parts)
        elif isinstance(layer, DynamicLayer):
            _stack_kv(layer, parts, lengths, longest)
    mask = torch.zeros(len(caches), longest + 1, dtype=torch.long)
    for row, length in enumerate(lengths):
        mask[row, longest - length :] = 1
    out = model(
        input_ids=torch.tensor(last_tokens, dtype=torch.long).unsqueeze(1),
        attention_mask=mask,
        position_ids=torch.tensor(positions, dtype=torch.long).unsqueeze(1),
        past_key_values=batch,
        use_cache=True,
    )
    for index, layer in enumerate(batch.layers):
        parts = [c.layers[index] for c in caches]
        if isinstance(layer, LinearAttentionLayer) and not isinstance(layer, DynamicLayer):
            _split_linear(layer, parts)
        elif isinstance(layer, DynamicLayer):
            _split_kv(layer, parts, lengths, longest)
    return out.logits[:, -1].float()


def _stack_linear(target: Any, parts: list[Any]) -> None:
    for state in range(target.number_of_states):
        if not parts[0].is_conv_states_initialized.get(state):
            continue
        target.lazy_initialization(
            conv_states=torch.cat([p.conv_states[state] for p in parts]),
            recurrent_states=torch.cat([p.recurrent_states[state] for p in parts]),
            state_idx=state,
            conv_kernel_size=parts[0].conv_kernel_size[state],
        )
        target.conv_states[state].copy_(torch.cat([p.conv_states[state] for p in parts]))
        target.recurrent_states[state].copy_(torch.cat([p.recurrent_states[state] for p in parts]))
        target.has_previous_state[state] = True


def _split_linear(source: Any, parts: list[Any]) -> None:
    for state in range(source.number_of_states):
        if not source.is_conv_states_initialized.get(state):
            continue
        for row, part in enumerate(parts):
            part.conv_states[state].copy_(source.conv_states[state][row : row + 1])
            part.recurrent_states[state].copy_(source.recurrent_states[state][row : row + 1])


def _stack_kv(target: Any, parts: list[Any], lengths: list[int], longest: int) -> None:
    def padded(tensor: torch.Tensor, length: int) -> torch.Tensor:
        return torch.nn.functional.pad(tensor, (0, 0, longest - length, 0))

    keys = torch.cat([padded(p.keys, n) for p, n in zip(parts, lengths, strict=True)])
    values = torch.cat([padded(p.values, n) for p, n in zip(parts, lengths, strict=True)])
    target.lazy_initialization(keys, values)
    target.keys, target.values = keys, values


def _split_kv(source: Any, parts: list[Any], lengths: list[int], longest: int) -> None:
    for row, (part, length) in enumerate(zip(parts, lengths, strict=True)):
        start = longest - length
        part.keys = source.keys[row : row + 1, :, start:].contiguous()
        part.values = source.values[row : row + 1, :, start:].contiguous()
