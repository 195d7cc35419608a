"""omni_sglang_cpu.mamba_ops against obviously-correct references: a per-token Mamba-2
recurrence and causal conv written as loops here, and transformers' NemotronH mixer
(its torch path) for a whole layer. Shapes and call forms are those of SGLang's
MambaMixer2.forward (prefill: varlen, batch 1; decode: expanded A/dt/D/dt_bias)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from omni_sglang_cpu import mamba_ops

H, P, N, W = 8, 4, 16, 4  # heads, head dim, state size, conv width
TOL = {"rtol": 1e-4, "atol": 1e-4}


def _params(groups: int, d_per_dim: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    dim = H * P + 2 * groups * N
    return {
        "A": -torch.rand(H, generator=g) * 2 - 0.1,
        "D": torch.randn(H, P, generator=g) if d_per_dim else torch.randn(H, generator=g),
        "dt_bias": torch.randn(H, generator=g) * 0.5,
        "w": torch.randn(dim, W, generator=g) * 0.5,
        "b": torch.randn(dim, generator=g) * 0.1,
    }


def _inputs(T: int, groups: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, H * P + 2 * groups * N + H, generator=g)  # [xBC | dt] per token


def ref_conv(xbc: torch.Tensor, w: torch.Tensor, b: torch.Tensor, state: torch.Tensor):
    """xbc (T, dim); state (dim, W-1) oldest first. Returns (silu output, new state)."""
    ext = torch.cat([state.t(), xbc])
    out = torch.stack([(ext[t : t + W].t() * w).sum(-1) + b for t in range(len(xbc))])
    return F.silu(out), ext[-(W - 1) :].t()


def ref_ssm(x, dt, Bm, Cm, p, h, dt_limit=(0.0, float("inf"))):
    """Per-token recurrence. x (T,H,P), dt (T,H), B/C (T,G,N), h (H,P,N)."""
    hpg = H // Bm.shape[1]
    dt = F.softplus(dt + p["dt_bias"]).clamp(*dt_limit)
    D = p["D"] if p["D"].dim() == 2 else p["D"][:, None]
    ys = []
    for t in range(len(x)):
        Bh, Ch = Bm[t].repeat_interleave(hpg, 0), Cm[t].repeat_interleave(hpg, 0)
        h = (
            h * torch.exp(dt[t] * p["A"])[:, None, None]
            + (dt[t, :, None] * x[t])[..., None] * Bh[:, None]
        )
        ys.append((h * Ch[:, None]).sum(-1) + D * x[t])
    return torch.stack(ys), h


def _split(xbc: torch.Tensor, groups: int):
    x, Bm, Cm = xbc.split([H * P, groups * N, groups * N], dim=-1)
    return x.reshape(-1, H, P), Bm.reshape(-1, groups, N), Cm.reshape(-1, groups, N)


def run_prefill(proj, lens, slots, p, groups, conv_pool, ssm_pool, has_init, chunk=16):
    """SGLang's prefill call sequence (mamba.py) on a varlen batch."""
    T = sum(lens)
    qsl = torch.tensor([0, *torch.tensor(lens).cumsum(0).tolist()], dtype=torch.int32)
    slots_t = torch.tensor(slots, dtype=torch.int32)
    xbc, dt = proj[:, :-H], proj[:, -H:]
    has = None if has_init is None else torch.tensor(has_init)
    conv = mamba_ops.causal_conv1d_fn(
        xbc.transpose(0, 1), p["w"], p["b"], activation="silu", conv_states=conv_pool,
        has_initial_state=has, cache_indices=slots_t, query_start_loc=qsl, seq_lens_cpu=lens,
    ).transpose(0, 1)  # fmt: skip
    x, Bm, Cm = _split(conv, groups)
    init = None
    if has is not None:
        init = torch.where(has[:, None, None, None], ssm_pool[slots_t.long()], 0)
    out = torch.empty(1, T, H, P)
    inter, varlen, track = mamba_ops.mamba_chunk_scan_combined(
        x[None], dt[None], p["A"], Bm[None], Cm[None], chunk_size=chunk, D=p["D"],
        dt_bias=p["dt_bias"], cu_seqlens=qsl, initial_states=init, return_varlen_states=True,
        return_final_states=False, return_track_states=True, track_seq_idx=None,
        track_end_locs=None, dt_softplus=True, out=out, state_dtype=ssm_pool.dtype,
    )  # fmt: skip
    ssm_pool[slots_t.long()] = varlen
    return out[0], inter, track, conv


def run_decode(proj, slots, p, groups, conv_pool, ssm_pool):
    """SGLang's decode call sequence (one token per entry)."""
    idx = torch.tensor(slots, dtype=torch.int32)
    xbc = mamba_ops.causal_conv1d_update(
        proj[:, :-H], conv_pool, p["w"], p["b"], "silu", conv_state_indices=idx
    )
    x, Bm, Cm = _split(xbc, groups)
    dt = proj[:, -H:, None].expand(-1, -1, P)
    A = p["A"][:, None, None].expand(-1, P, N)
    D = p["D"] if p["D"].dim() == 2 else p["D"][:, None].expand(-1, P)
    out = torch.empty(len(slots), H, P)
    mamba_ops.selective_state_update(
        ssm_pool, x, dt, A, Bm, Cm, D, z=None, dt_bias=p["dt_bias"][:, None].expand(-1, P),
        dt_softplus=True, state_batch_indices=idx, out=out,
    )  # fmt: skip
    return out


def _pools(groups: int, slots: int = 8, seed: int = 2):
    g = torch.Generator().manual_seed(seed)
    dim = H * P + 2 * groups * N
    conv = torch.randn(slots, dim, W - 1, generator=g)
    return conv, torch.randn(slots, H, P, N, generator=g) * 0.3


@pytest.mark.parametrize("groups,d_per_dim", [(1, False), (2, True), (4, False)])
@pytest.mark.parametrize("with_init", [False, True])
def test_varlen_prefill_matches_recurrence(groups, d_per_dim, with_init):
    lens, slots = [37, 1, 16], [5, 2, 6]  # not a chunk multiple, a single token, one chunk
    p, proj = _params(groups, d_per_dim), _inputs(sum(lens), groups)
    conv_pool, ssm_pool = _pools(groups)
    conv0, ssm0 = conv_pool.clone(), ssm_pool.clone()
    has = [True, True, False] if with_init else None
    y, inter, track, _ = run_prefill(proj, lens, slots, p, groups, conv_pool, ssm_pool, has)
    assert track is None and inter.shape == (1, 4, H, P, N)
    start = 0
    for i, (n, s) in enumerate(zip(lens, slots, strict=True)):
        use = bool(has and has[i])
        c_state = conv0[s] if use else torch.zeros_like(conv0[s])
        xbc, new_conv = ref_conv(proj[start : start + n, :-H], p["w"], p["b"], c_state)
        x, Bm, Cm = _split(xbc, groups)
        h0 = ssm0[s] if use else torch.zeros(H, P, N)
        y_ref, h_ref = ref_ssm(x, proj[start : start + n, -H:], Bm, Cm, p, h0)
        torch.testing.assert_close(y[start : start + n], y_ref, **TOL)
        torch.testing.assert_close(ssm_pool[s], h_ref, **TOL)
        torch.testing.assert_close(conv_pool[s], new_conv, **TOL)
        start += n
    untouched = [i for i in range(8) if i not in slots]
    assert torch.equal(conv_pool[untouched], conv0[untouched])
    assert torch.equal(ssm_pool[untouched], ssm0[untouched])


def test_grid_and_track_states():
    """intermediate states on the chunk grid of the flat batch and track states at
    arbitrary ends, as the Triton kernel returns them."""
    lens, groups = [21, 30, 13], 2
    p, proj = _params(groups, True), _inputs(sum(lens), groups)
    init = _pools(groups)[1][[0, 1, 2]].clone()
    xbc, _ = ref_conv(proj[:, :-H], p["w"], p["b"], torch.zeros(proj.shape[1] - H, W - 1))
    x, Bm, Cm = _split(xbc, groups)  # conv per sequence does not matter for the scan
    qsl = torch.tensor([0, 21, 51, 64])
    ends = torch.tensor([21 + 7, 51, 51 + 13, 21])  # mid, start (= init), end, start
    inter, varlen, track = mamba_ops.mamba_chunk_scan_combined(
        x[None], proj[None, :, -H:], p["A"], Bm[None], Cm[None], 16, D=p["D"],
        dt_bias=p["dt_bias"], cu_seqlens=qsl, initial_states=init, dt_softplus=True,
        return_varlen_states=True, return_track_states=True, out=torch.empty(1, 64, H, P),
        track_seq_idx=torch.tensor([1, 2, 2, 1]), track_end_locs=ends,
    )  # fmt: skip

    def state(seq: int, end: int) -> torch.Tensor:
        s = int(qsl[seq])
        return ref_ssm(x[s:end], proj[s:end, -H:], Bm[s:end], Cm[s:end], p, init[seq])[1]

    assert inter.shape == (1, 4, H, P, N)
    torch.testing.assert_close(inter[0, 0], init[0])
    for k, (seq, end) in enumerate([(0, 16), (1, 32), (1, 48)], start=1):
        torch.testing.assert_close(inter[0, k], state(seq, end), **TOL)
    expect = [state(1, 28), init[2], state(2, 64), init[1]]
    torch.testing.assert_close(track[0], torch.stack(expect), **TOL)
    torch.testing.assert_close(varlen[1], state(1, 51), **TOL)


@pytest.mark.parametrize("groups,d_per_dim", [(1, False), (2, True)])
def test_prefill_then_decode_equals_whole_sequence(groups, d_per_dim):
    lens, slots, steps = [37, 5, 16], [5, 2, 6], 4
    p = _params(groups, d_per_dim)
    full = [_inputs(n + steps, groups, seed=10 + i) for i, n in enumerate(lens)]
    conv_pool, ssm_pool = _pools(groups)
    prompt = torch.cat([f[:n] for f, n in zip(full, lens, strict=True)])
    y_pre, *_ = run_prefill(prompt, lens, slots, p, groups, conv_pool, ssm_pool, None)
    conv_after, ssm_after = conv_pool.clone(), ssm_pool.clone()
    order = [2, 0, 1]  # decode batch order differs from prefill; odd steps have a pad entry
    y_dec = []
    for t in range(steps):
        pad = [torch.randn(full[0].shape[1])] * (t % 2)
        rows = [full[i][lens[i] + t] for i in order] + pad
        y_dec.append(run_decode(torch.stack(rows), [slots[i] for i in order] + [-1] * (t % 2), p,
                                groups, conv_pool, ssm_pool))  # fmt: skip
    # Whole sequences at once, fresh pools.
    conv_ref, ssm_ref = _pools(groups)
    whole = torch.cat(full)
    y_all, *_ = run_prefill(whole, [n + steps for n in lens], slots, p, groups, conv_ref, ssm_ref,
                            [False] * 3)  # fmt: skip
    starts = torch.tensor([0, *lens]).cumsum(0)
    wstarts = torch.tensor([0, *[n + steps for n in lens]]).cumsum(0)
    for i, n in enumerate(lens):
        pre, ref = y_pre[starts[i] : starts[i] + n], y_all[wstarts[i] : wstarts[i] + n]
        torch.testing.assert_close(pre, ref, **TOL)
        for t in range(steps):
            torch.testing.assert_close(y_dec[t][order.index(i)], y_all[wstarts[i] + n + t], **TOL)
    torch.testing.assert_close(conv_pool[slots], conv_ref[slots], **TOL)
    torch.testing.assert_close(ssm_pool[slots], ssm_ref[slots], **TOL)
    others = [i for i in range(8) if i not in slots]  # includes 7: -1 must not wrap to it
    assert torch.equal(conv_pool[others], conv_after[others])
    assert torch.equal(ssm_pool[others], ssm_after[others])


def test_selective_state_update_untied_a_and_dt():
    """The general (dim, dstate)-dependent A and per-dim dt path, against the formula."""
    g = torch.Generator().manual_seed(3)
    b, G = 3, 2
    state = torch.randn(5, H, P, N, generator=g)
    x, dt = torch.randn(b, H, P, generator=g), torch.randn(b, H, P, generator=g)
    A, D = -torch.rand(H, P, N, generator=g), torch.randn(H, P, generator=g)
    Bm, Cm, dtb = torch.randn(b, G, N, generator=g), torch.randn(b, G, N, generator=g), dt[0]
    z = torch.randn(b, H, P, generator=g)
    idx = torch.tensor([4, 0, 2])
    ref_state = state.clone()
    out = mamba_ops.selective_state_update(
        state, x, dt, A, Bm, Cm, D, z=z, dt_bias=dtb, dt_softplus=True, state_batch_indices=idx
    )
    d = F.softplus(dt + dtb)[..., None]
    Bh, Ch = Bm.repeat_interleave(H // G, 1), Cm.repeat_interleave(H // G, 1)
    h = ref_state[idx] * torch.exp(A * d) + d * x[..., None] * Bh[:, :, None]
    y = ((h * Ch[:, :, None]).sum(-1) + D * x) * F.silu(z)
    torch.testing.assert_close(out, y, **TOL)
    torch.testing.assert_close(state[idx], h, **TOL)
    assert torch.equal(state[[1, 3]], ref_state[[1, 3]])


def test_against_transformers_nemotron_h_mixer():
    """A whole NemotronH Mamba-2 layer: transformers' torch path vs the same layer built
    from these ops (a batch of 2 sequences passed as one varlen batch)."""
    from transformers.models.nemotron_h.configuration_nemotron_h import NemotronHConfig
    from transformers.models.nemotron_h.modeling_nemotron_h import NemotronHMamba2Mixer

    torch.manual_seed(0)
    cfg = NemotronHConfig(
        hidden_size=32, mamba_num_heads=H, mamba_head_dim=P, ssm_state_size=N, n_groups=2,
        conv_kernel=W, chunk_size=16, hybrid_override_pattern="M", num_hidden_layers=1,
        use_conv_bias=True, time_step_min=0.5,  # so that the dt_limit clamp bites
    )  # fmt: skip
    mixer = NemotronHMamba2Mixer(cfg, layer_idx=0).eval()
    with torch.no_grad():
        mixer.A_log.uniform_(-1, 1)
        mixer.dt_bias.normal_()
        mixer.D.normal_()
        hidden = torch.randn(2, 45, 32)
        expected = mixer(hidden)
        gate, xbc, dt = mixer.in_proj(hidden.reshape(90, 32)).split([H * P, H * P + 4 * N, H], -1)
        qsl = torch.tensor([0, 45, 90])
        w = mixer.conv1d.weight.squeeze(1)
        conv = mamba_ops.causal_conv1d_fn(
            xbc.t(), w, mixer.conv1d.bias, query_start_loc=qsl, activation="silu"
        ).t()
        x, Bm, Cm = _split(conv, 2)
        out = torch.empty(1, 90, H, P)
        mamba_ops.mamba_chunk_scan_combined(
            x[None], dt[None], -torch.exp(mixer.A_log), Bm[None], Cm[None], 16, D=mixer.D,
            dt_bias=mixer.dt_bias, cu_seqlens=qsl, dt_softplus=True, out=out,
            dt_limit=mixer.time_step_limit, return_varlen_states=True,
        )  # fmt: skip
        got = mixer.out_proj(mixer.norm(out.reshape(90, H * P), gate)).reshape(2, 45, 32)
    torch.testing.assert_close(got, expected, **TOL)


def test_unsupported_paths_raise():
    state = torch.zeros(2, H, P, N)
    x = torch.zeros(1, H, P)
    with pytest.raises(NotImplementedError, match="intermediate_states_buffer"):
        mamba_ops.selective_state_update(
            state, x, x, torch.zeros(H, P, N), torch.zeros(1, 1, N), torch.zeros(1, 1, N),
            intermediate_states_buffer=state, disable_state_update=True,
        )  # fmt: skip
    with pytest.raises(NotImplementedError, match="retrieve_next_token"):
        mamba_ops.causal_conv1d_update(
            torch.zeros(1, 4), torch.zeros(1, 4, W - 1), torch.zeros(4, W),
            retrieve_next_token=torch.zeros(1, 1),
        )  # fmt: skip
    with pytest.raises(NotImplementedError, match="activation"):
        mamba_ops.causal_conv1d_update(
            torch.zeros(1, 4), torch.zeros(1, 4, W - 1), torch.zeros(4, W), activation="relu"
        )
    with pytest.raises(NotImplementedError, match="varlen"):
        mamba_ops.mamba_chunk_scan_combined(
            torch.zeros(2, 4, H, P), torch.zeros(2, 4, H), torch.zeros(H),
            torch.zeros(2, 4, 1, N), torch.zeros(2, 4, 1, N), 16, return_final_states=True,
        )  # fmt: skip


def test_prefill_conv_skips_padded_slot():
    p, proj = _params(1, False), _inputs(9, 1)
    conv_pool, _ = _pools(1)
    conv0 = conv_pool.clone()
    qsl, idx = torch.tensor([0, 4, 9]), torch.tensor([-1, 3])
    out = mamba_ops.causal_conv1d_fn(
        proj[:, :-H].t(), p["w"], p["b"], query_start_loc=qsl, cache_indices=idx,
        has_initial_state=torch.tensor([True, True]), conv_states=conv_pool,
    ).t()  # fmt: skip
    ref, new = ref_conv(proj[4:, :-H], p["w"], p["b"], conv0[3])
    torch.testing.assert_close(out[4:], ref, **TOL)
    torch.testing.assert_close(conv_pool[3], new, **TOL)
    others = [i for i in range(8) if i != 3]  # -1 must not wrap around to slot 7
    assert torch.equal(conv_pool[others], conv0[others])


@pytest.mark.parametrize("check_freed_slots", [False, True])
def test_decode_track_copies_the_marked_rows_only(check_freed_slots):
    """The torch version of SGLang's Triton track kernel: for every row whose mask is
    set, slot ``cache_indices[i]``'s conv and SSM states go to ``track_indices[i]``, in
    one layer's pools or in all layers' at once; a freed slot (-1) is skipped when asked."""
    from omni_sglang_cpu import mamba_track

    conv, ssm = torch.randn(3, 10, 4, W - 1), torch.randn(3, 10, H, P, N)
    src = torch.tensor([1, 2, 3, -1 if check_freed_slots else 4, 5])
    dst = torch.tensor([6, 7, 8, 9, -1 if check_freed_slots else 0])
    mask = torch.tensor([True, False, True, True, True])
    want_conv, want_ssm = conv.clone(), ssm.clone()
    for i in range(len(src)):
        if mask[i] and src[i] >= 0 and dst[i] >= 0:
            want_conv[:, dst[i]] = conv[:, src[i]]
            want_ssm[:, dst[i]] = ssm[:, src[i]]

    one_layer = conv[0].clone(), ssm[0].clone()
    mamba_track.track_mamba_states_if_needed(
        *one_layer, src, mask, dst, len(src), check_freed_slots=check_freed_slots
    )
    assert torch.equal(one_layer[0], want_conv[0]) and torch.equal(one_layer[1], want_ssm[0])
    mamba_track.track_mamba_states_all_layers(
        conv, ssm, src, mask, dst, len(src), check_freed_slots=check_freed_slots
    )
    assert torch.equal(conv, want_conv) and torch.equal(ssm, want_ssm)


def test_rows_past_the_batch_are_not_read():
    """SGLang's buffers are padded past ``batch_size``: those rows never count."""
    from omni_sglang_cpu import mamba_track

    conv, ssm = torch.randn(6, 4, W - 1), torch.randn(6, H, P, N)
    before = conv.clone(), ssm.clone()
    mask = torch.tensor([False, True])  # row 1 is padding
    mamba_track.track_mamba_states_if_needed(
        conv, ssm, torch.tensor([0, 1]), mask, torch.tensor([2, 3]), 1
    )
    assert torch.equal(conv, before[0]) and torch.equal(ssm, before[1])
