"""Extend (prefill) attention over a cached prefix without recomputing the prefix's rows.

SGLang's ``torch_native`` backend runs a request's extend as full causal attention over
the whole sequence: it pads the new tokens' queries with the prefix's length of
uninitialised rows and throws their output away (``TorchNativeAttnBackend.
_run_sdpa_forward_extend``), so a request whose 8,000-token prefix came from the radix
cache still paid 8,000 x 8,000 attention (measured: 197 ms against 315 ms uncached, where
the other layers' share of the cached request was ~40 ms). Here the new tokens' queries
attend the whole key range under the causal mask shifted by the prefix: the same
result for the rows SGLang keeps, in (new x all) instead of (all x all) work.

Only the plain case is taken over (causal self-attention, no sliding window, no encoder);
every other call goes to SGLang's own method.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.functional import scaled_dot_product_attention


def plain_extend(
    query: torch.Tensor,
    output: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    req_to_token: torch.Tensor,
    req_pool_indices: torch.Tensor,
    seq_lens: torch.Tensor,
    extend_prefix_lens: torch.Tensor,
    extend_seq_lens: torch.Tensor,
    scaling: float | None,
    enable_gqa: bool,
) -> torch.Tensor:
    """query/output ``[tokens, heads, dim]``; each sequence's new tokens attend its cached
    and new keys, causally."""
    heads_first = query.movedim(0, 1)  # [heads, tokens, dim]
    start = 0
    for seq in range(seq_lens.shape[0]):
        new, prefix, total = (
            int(extend_seq_lens[seq]),
            int(extend_prefix_lens[seq]),
            int(seq_lens[seq]),
        )
        tokens = req_to_token[req_pool_indices[seq], :total]
        q = heads_first[:, start : start + new]
        k = k_cache[tokens].movedim(0, 1).to(q.dtype)
        v = v_cache[tokens].movedim(0, 1).to(q.dtype)
        if prefix == 0:
            mask, causal = None, True
        else:  # new token i sits at prefix + i: it sees keys 0 .. prefix + i
            mask = torch.ones(new, total, dtype=torch.bool, device=q.device).tril(prefix)
            causal = False
        out = scaled_dot_product_attention(
            q.unsqueeze(0),
            k.unsqueeze(0),
            v.unsqueeze(0),
            attn_mask=mask,
            is_causal=causal,
            scale=scaling,
            enable_gqa=enable_gqa,
        )
        output[start : start + new] = out.squeeze(0).movedim(0, 1)
        start += new
    return output


def install(backend_class: Any) -> None:
    original = backend_class._run_sdpa_forward_extend
    if getattr(original, "_omni_plain_extend", False):
        return

    def _run_sdpa_forward_extend(
        self: Any,
        query: torch.Tensor,
        output: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        req_to_token: torch.Tensor,
        req_pool_indices: torch.Tensor,
        seq_lens: torch.Tensor,
        extend_prefix_lens: torch.Tensor,
        extend_seq_lens: torch.Tensor,
        encoder_lens: torch.Tensor | None = None,
        scaling: float | None = None,
        enable_gqa: bool = False,
        causal: bool = False,
        is_cross_attn: bool = False,
        sliding_window_size: int | None = None,
    ) -> torch.Tensor:
        windowed = sliding_window_size is not None and sliding_window_size > -1
        if causal and encoder_lens is None and not is_cross_attn and not windowed:
            return plain_extend(
                query, output, k_cache, v_cache, req_to_token, req_pool_indices,
                seq_lens, extend_prefix_lens, extend_seq_lens, scaling, enable_gqa,
            )  # fmt: skip
        return original(
            self, query, output, k_cache, v_cache, req_to_token, req_pool_indices,
            seq_lens, extend_prefix_lens, extend_seq_lens, encoder_lens, scaling,
            enable_gqa, causal, is_cross_attn, sliding_window_size,
        )  # fmt: skip

    _run_sdpa_forward_extend._omni_plain_extend = True  # type: ignore[attr-defined]
    _run_sdpa_forward_extend._omni_original = original  # type: ignore[attr-defined]
    backend_class._run_sdpa_forward_extend = _run_sdpa_forward_extend
