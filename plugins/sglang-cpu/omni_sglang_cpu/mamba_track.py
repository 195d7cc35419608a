"""Torch-native Mamba state tracking for SGLang's ``extra_buffer`` radix cache on a CPU.

With ``mamba_radix_cache_strategy="extra_buffer"`` SGLang snapshots a request's Mamba
state (conv window and SSM state) into a spare "track" slot whenever its length crosses
the track interval, so the radix tree can cache the prefix that ends there: a hybrid
model's prefix hit needs the state at the prefix's end, not only its KV. Prefill's
snapshots are taken by ``mamba_chunk_scan_combined`` (``mamba_ops``) and by plain
indexing in ``MambaMixer2.forward``; decode's are a Triton gather-scatter
(``sglang/kernels/ops/mamba/mamba_state_scatter_triton.py``), restated here with the
same per-row semantics: for every batch row whose track mask is set, copy the state rows
of slot ``cache_indices[i]`` to slot ``mamba_track_indices[i]``; with
``check_freed_slots``, rows whose slot is freed (-1) are skipped.
"""

from __future__ import annotations

import torch


def _tracked_rows(
    cache_indices: torch.Tensor,
    mamba_track_mask: torch.Tensor,
    mamba_track_indices: torch.Tensor,
    batch_size: int,
    check_freed_slots: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    mask = mamba_track_mask[:batch_size].to(torch.bool)
    src = cache_indices[:batch_size][mask].to(torch.int64)
    dst = mamba_track_indices[:batch_size][mask].to(torch.int64)
    if check_freed_slots:
        live = (src >= 0) & (dst >= 0)
        src, dst = src[live], dst[live]
    return src, dst


def track_mamba_states_if_needed(
    conv_states: torch.Tensor,
    ssm_states: torch.Tensor,
    cache_indices: torch.Tensor,
    mamba_track_mask: torch.Tensor,
    mamba_track_indices: torch.Tensor,
    batch_size: int,
    check_freed_slots: bool = False,
) -> None:
    """One layer's pools, ``[pool_size, ...]``."""
    src, dst = _tracked_rows(
        cache_indices, mamba_track_mask, mamba_track_indices, batch_size, check_freed_slots
    )
    if src.numel():
        conv_states[dst] = conv_states[src]
        ssm_states[dst] = ssm_states[src]


def track_mamba_states_all_layers(
    conv_states_pool: torch.Tensor,
    ssm_states_pool: torch.Tensor,
    cache_indices: torch.Tensor,
    mamba_track_mask: torch.Tensor,
    mamba_track_indices: torch.Tensor,
    batch_size: int,
    check_freed_slots: bool = False,
) -> None:
    """Every layer's pools at once, ``[num_layers, pool_size, ...]``."""
    src, dst = _tracked_rows(
        cache_indices, mamba_track_mask, mamba_track_indices, batch_size, check_freed_slots
    )
    if src.numel():
        conv_states_pool[:, dst] = conv_states_pool[:, src]
        ssm_states_pool[:, dst] = ssm_states_pool[:, src]
