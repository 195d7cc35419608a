"""SGLang's logprob entries: ``[logprob, token_id, text_or_None]``, for prompt and output.

As in SGLang, a prompt token's logprob is read from the model's raw distribution (what
``sgl.select`` compares choices by); a sampled token's from the distribution it was drawn
from (``Sampler.logprobs``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

Entry = list[Any]


def _entry(logprob: float | None, token: int, decode: Callable[[int], str] | None) -> Entry:
    return [logprob, token, decode(token) if decode else None]


def top_entries(
    logprobs: torch.Tensor, count: int, decode: Callable[[int], str] | None
) -> list[Entry]:
    if count <= 0:
        return []
    values, ids = torch.topk(logprobs, min(count, logprobs.numel()))
    return [_entry(float(v), int(i), decode) for v, i in zip(values, ids, strict=True)]


def prompt_logprobs(
    logits: torch.Tensor,
    ids: list[int],
    start: int,
    top_n: int,
    decode: Callable[[int], str] | None,
) -> tuple[list[Entry], list[list[Entry]]]:
    """Entries for prompt positions ``start``..end; position 0 has no context (None)."""
    entries: list[Entry] = []
    tops: list[list[Entry]] = []
    if start < 0 or start >= len(ids):
        return entries, tops
    logprobs = torch.log_softmax(logits.float(), dim=-1)  # [L, V]
    for pos in range(start, len(ids)):
        if pos == 0:
            entries.append(_entry(None, ids[0], decode))
            tops.append([])
            continue
        row = logprobs[pos - 1]
        entries.append(_entry(float(row[ids[pos]]), ids[pos], decode))
        tops.append(top_entries(row, top_n, decode))
    return entries, tops
