"""The CPU platform's extend attention equals SGLang's ``torch_native`` one on the rows
SGLang keeps, for requests with and without a cached prefix, batched, with GQA."""

from __future__ import annotations

import pytest
import torch
from sglang.srt.layers.attention.torch_native_backend import TorchNativeAttnBackend

from omni_sglang_cpu.extend_attention import install, plain_extend

HEADS, KV_HEADS, DIM = 4, 2, 16


def sglangs_own() -> object:
    method = TorchNativeAttnBackend._run_sdpa_forward_extend
    return getattr(method, "_omni_original", method)


@pytest.mark.parametrize("prefixes", [[0], [37], [0, 64, 5], [200, 1]])
def test_equals_sglangs_extend_on_the_kept_rows(prefixes: list[int]) -> None:
    torch.manual_seed(0)
    news = [7, 1, 19, 3][: len(prefixes)]
    totals = [p + n for p, n in zip(prefixes, news, strict=True)]
    pool = sum(totals) + 8
    k_cache, v_cache = torch.randn(pool, KV_HEADS, DIM), torch.randn(pool, KV_HEADS, DIM)
    req_to_token = torch.zeros(len(prefixes), max(totals), dtype=torch.int64)
    slots = torch.randperm(pool)  # the pool is not in sequence order
    at = 0
    for seq, total in enumerate(totals):
        req_to_token[seq, :total] = slots[at : at + total]
        at += total
    query = torch.randn(sum(news), HEADS, DIM)
    args = (
        k_cache, v_cache, req_to_token, torch.arange(len(prefixes)),
        torch.tensor(totals), torch.tensor(prefixes), torch.tensor(news),
    )  # fmt: skip
    want = sglangs_own()(  # type: ignore[operator]
        None, query, torch.zeros_like(query), *args,
        scaling=DIM**-0.5, enable_gqa=True, causal=True,
    )  # fmt: skip
    got = plain_extend(query, torch.zeros_like(query), *args, DIM**-0.5, True)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_installed_it_takes_the_plain_case_only() -> None:
    class Backend:
        def _run_sdpa_forward_extend(self, *args: object, **kwargs: object) -> str:
            return "sglang's"

    install(Backend)
    install(Backend)  # idempotent
    backend = Backend()
    q = torch.randn(3, HEADS, DIM)
    windowed = backend._run_sdpa_forward_extend(
        q, q.clone(), *[torch.zeros(1)] * 7, causal=True, sliding_window_size=4
    )
    assert windowed == "sglang's"
    cross = backend._run_sdpa_forward_extend(
        q, q.clone(), *[torch.zeros(1)] * 7, causal=True, is_cross_attn=True
    )
    assert cross == "sglang's"
