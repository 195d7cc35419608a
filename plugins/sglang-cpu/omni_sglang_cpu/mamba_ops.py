"""Torch-native Mamba-2 ops for SGLang on a plain CPU.

Drop-in replacements for the four kernels ``MambaMixer2.forward`` (SGLang 0.5.23,
``sglang/srt/layers/attention/mamba/mamba.py``) calls, which are Triton- or CUDA-only:
``causal_conv1d_fn``, ``causal_conv1d_update``, ``mamba_chunk_scan_combined`` and
``selective_state_update``. Signatures, return values and in-place effects follow the
Triton versions in ``sglang/kernels/ops/mamba``: conv states hold the last ``width - 1``
inputs oldest first, entries whose slot is ``pad_slot_id`` are neither read nor written,
maths is float32 and outputs take the input dtype. The speculative-decoding extras
(intermediate buffers, EAGLE trees, circular conv buffers) raise NotImplementedError.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
import torch.nn.functional as F

PAD_SLOT_ID = -1
# Internal SSD chunk. The result does not depend on it (only rounding does), so it is
# picked for the CPU: the intra-chunk work grows with it, the Python loop over chunks
# shrinks. It must divide the caller's chunk_size so that grid states land on boundaries.
_SCAN_CHUNK = 64


def _is_silu(activation: bool | str | None) -> bool:
    if activation is None or activation is False:
        return False
    if activation is True or activation in ("silu", "swish"):
        return True
    raise NotImplementedError(f"CPU causal conv1d: activation {activation!r} (None/silu/swish)")


def _reject(op: str, **features: Any) -> None:
    used = [name for name, value in features.items() if value is not None and value is not False]
    if used:
        raise NotImplementedError(
            f"CPU {op}: {', '.join(used)} not supported (speculative decoding paths)"
        )


def _slots(
    indices: torch.Tensor | None, n: int, pad_slot_id: int
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(index to read, valid mask or None if nothing is padded, indices to write).
    Padded entries must not touch the pool, and -1 would wrap around to its last row."""
    idx = torch.arange(n) if indices is None else indices.to(torch.int64)
    valid = idx != pad_slot_id
    if bool(valid.all()):
        return idx, None, idx
    return torch.where(valid, idx, 0), valid, idx[valid]


def causal_conv1d_fn(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    query_start_loc: torch.Tensor | None = None,
    cache_indices: torch.Tensor | None = None,
    has_initial_state: torch.Tensor | None = None,
    conv_states: torch.Tensor | None = None,
    activation: bool | str | None = "silu",
    pad_slot_id: int = PAD_SLOT_ID,
    seq_lens_cpu: list[int] | None = None,
    validate_data: bool = False,
    block_table: torch.Tensor | None = None,
) -> torch.Tensor:
    """Varlen causal depthwise conv. x: (dim, total_tokens), sequences concatenated as
    given by query_start_loc; weight (dim, width). Returns a new (dim, total_tokens)
    tensor; conv_states[cache_indices[i], :, :width-1] gets sequence i's
    last width-1 inputs (initial state included when the sequence is shorter).
    seq_lens_cpu / block_table only size the Triton grid: lengths come from
    query_start_loc, as in the Triton kernel."""
    silu = _is_silu(activation)
    if x.dim() != 2:
        raise NotImplementedError("CPU causal_conv1d_fn: x must be (dim, total_tokens)")
    dim, total = x.shape
    k = weight.shape[1] - 1
    bounds = query_start_loc.tolist() if query_start_loc is not None else [0, total]
    starts, lens = bounds[:-1], [e - s for s, e in itertools.pairwise(bounds)]
    nseq, ntok = len(lens), sum(lens)
    lens_t = torch.tensor(lens, dtype=torch.int64)
    seq_of = torch.repeat_interleave(torch.arange(nseq), lens_t)
    before = torch.cumsum(lens_t, 0) - lens_t  # tokens of the earlier sequences
    contiguous = ntok == total and (nseq == 0 or starts[0] == 0)
    src = torch.tensor(starts, dtype=torch.int64)[seq_of] + torch.arange(ntok) - before[seq_of]
    # Work token-major: SGLang's x is the transpose of a (tokens, dim) tensor, so rows
    # are contiguous and every gather/scatter below moves whole rows.
    xt = x.t() if contiguous else x.t().index_select(0, src)

    # One conv over all sequences: each gets its own width-1 prefix rows (its conv state
    # or zeros) so no window mixes two sequences; seq s is ext[e_s : e_s + k + len_s].
    ext = xt.new_zeros(ntok + nseq * k, dim, dtype=torch.float32)
    ext.index_copy_(0, torch.arange(ntok) + (seq_of + 1) * k, xt.float())
    read, valid, write = _slots(cache_indices, nseq, pad_slot_id)
    e_start = before + torch.arange(nseq) * k
    if conv_states is not None and has_initial_state is not None and k > 0:
        use = has_initial_state.to(torch.bool)
        use = use if valid is None else use & valid
        init = conv_states[read, :, :k].float() * use[:, None, None]  # (nseq, dim, k)
        prefix = (e_start[:, None] + torch.arange(k)).reshape(-1)
        ext.index_copy_(0, prefix, init.transpose(1, 2).reshape(-1, dim))
    wf, rows = weight.float(), ext.shape[0] - k
    y = ext[:rows] * wf[:, 0]
    for j in range(1, k + 1):  # the conv width (4), not the tokens
        y.addcmul_(ext[j : j + rows], wf[:, j])
    if bias is not None:
        y += bias.float()
    if nseq > 1 and k > 0:
        y = y.index_select(0, torch.arange(ntok) + seq_of * k)  # drop straddling windows
    if silu:
        y = F.silu(y, inplace=True)
    # Token-major like SGLang's x (the caller transposes it back and splits the channels).
    out = torch.empty(total, dim, dtype=x.dtype)
    if contiguous:
        out.copy_(y)
    else:
        out.zero_().index_copy_(0, src, y.to(x.dtype))
    if conv_states is not None and k > 0:
        last = ext.index_select(0, ((e_start + lens_t)[:, None] + torch.arange(k)).reshape(-1))
        last = last.view(nseq, k, dim).transpose(1, 2)
        last = last if valid is None else last[valid]
        conv_states[write, :, :k] = last.to(conv_states.dtype)
    return out.t()


def causal_conv1d_update(
    x: torch.Tensor,
    conv_state: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: bool | str | None = None,
    cache_seqlens: torch.Tensor | None = None,
    conv_state_indices: torch.Tensor | None = None,
    num_accept_tokens: torch.Tensor | None = None,
    intermediate_conv_window: torch.Tensor | None = None,
    intermediate_state_indices: torch.Tensor | None = None,
    retrieve_next_token: torch.Tensor | None = None,
    retrieve_next_sibling: torch.Tensor | None = None,
    retrieve_parent_token: torch.Tensor | None = None,
    pad_slot_id: int = PAD_SLOT_ID,
    metadata: Any = None,
    validate_data: bool = False,
) -> torch.Tensor:
    """Decode-time conv for a batch. x: (batch, dim) or (batch, dim, seqlen); conv_state
    (slots, dim, >= width-1) is shifted left by seqlen in place. Padded entries are
    computed from a zero state (the Triton kernel leaves them unwritten) and not stored."""
    _reject("causal_conv1d_update", cache_seqlens=cache_seqlens,
            num_accept_tokens=num_accept_tokens, intermediate_conv_window=intermediate_conv_window,
            intermediate_state_indices=intermediate_state_indices,
            retrieve_next_token=retrieve_next_token, retrieve_next_sibling=retrieve_next_sibling,
            retrieve_parent_token=retrieve_parent_token)  # fmt: skip
    silu = _is_silu(activation)
    x3 = x.unsqueeze(-1) if x.dim() == 2 else x
    batch, _, seqlen = x3.shape
    width = weight.shape[1]
    read, valid, write = _slots(conv_state_indices, batch, pad_slot_id)
    state = conv_state.index_select(0, read)[:, :, : width - 1].float()
    if valid is not None:
        state *= valid[:, None, None]
    ext = torch.cat([state, x3.float()], dim=-1)  # (batch, dim, width-1+seqlen)
    y = (ext.unfold(-1, width, 1) * weight.float()[:, None, :]).sum(-1)
    if bias is not None:
        y += bias.float()[:, None]
    if silu:
        y = F.silu(y, inplace=True)
    new = ext[:, :, seqlen:] if valid is None else ext[valid, :, seqlen:]
    conv_state[write, :, : width - 1] = new.to(conv_state.dtype)
    y = y.to(x.dtype)
    return y.squeeze(-1) if x.dim() == 2 else y


def selective_state_update(
    state: torch.Tensor,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    dt_softplus: bool = False,
    state_batch_indices: torch.Tensor | None = None,
    pad_slot_id: int = PAD_SLOT_ID,
    out: torch.Tensor | None = None,
    disable_state_update: bool = False,
    intermediate_states_buffer: torch.Tensor | None = None,
    cache_steps: int | None = None,
    retrieve_parent_token: torch.Tensor | None = None,
    intermediate_state_indices: torch.Tensor | None = None,
    enable_stochastic_rounding: bool = False,
    cache_philox_rounds: int = 0,
) -> torch.Tensor:
    """One recurrent SSM step per entry (or T steps for x of (batch, T, nheads, dim)).
    Shapes as the Triton kernel: state (slots, nheads, dim, dstate), x/dt (batch, nheads,
    dim), A (nheads, dim, dstate), B/C (batch, ngroups, dstate), D/dt_bias (nheads, dim).
    Writes out (returned too) and state[state_batch_indices] in place; padded entries use
    a zero state and are not stored."""
    _reject("selective_state_update", disable_state_update=disable_state_update,
            intermediate_states_buffer=intermediate_states_buffer, cache_steps=cache_steps,
            retrieve_parent_token=retrieve_parent_token,
            intermediate_state_indices=intermediate_state_indices,
            enable_stochastic_rounding=enable_stochastic_rounding)  # fmt: skip
    pool = state.unsqueeze(1) if state.dim() == 3 else state

    def to4(t: torch.Tensor) -> torch.Tensor:  # -> (batch, T, heads|groups, last)
        t = t.unsqueeze(1) if t.dim() == 2 else t
        return t.unsqueeze(1) if t.dim() == 3 else t

    x4, dt4, B4, C4 = to4(x), to4(dt), to4(B), to4(C)
    A3 = A.unsqueeze(0) if A.dim() == 2 else A
    bias = None if dt_bias is None else dt_bias.unsqueeze(0) if dt_bias.dim() == 1 else dt_bias
    batch, steps, nheads, dim = x4.shape
    ngroups, dstate = B4.shape[2], B4.shape[3]
    grouped = (batch, ngroups, nheads // ngroups)  # heads of a group share B and C
    # SGLang passes A, dt and dt_bias broadcast over dim with stride 0 (the Triton kernel
    # checks the same): the decay is then one scalar per head, no (dim, dstate) exp.
    tied = A3.stride(-1) == 0 and A3.stride(-2) == 0 and dt4.stride(-1) == 0
    tied = tied and (bias is None or bias.stride(-1) == 0)
    dtf = dt4[..., :1].float() if tied else dt4.float()
    if bias is not None:
        dtf = dtf + (bias[..., :1] if tied else bias).float()
    if dt_softplus:
        dtf = F.softplus(dtf)  # threshold 20, as the kernel's softplus
    read, valid, write = _slots(state_batch_indices, batch, pad_slot_id)
    h = pool.index_select(0, read).float()
    if valid is not None:
        h *= valid[:, None, None, None]  # the kernel reads a padded entry's state as 0
    h = h.view(*grouped, dim, dstate)
    xf = x4.float()
    y = torch.empty(batch, steps, nheads, dim, dtype=torch.float32)
    for t in range(steps):  # steps == 1 on SGLang's (non-speculative) decode path
        if tied:
            dA = torch.exp(A3[:, 0, 0].float() * dtf[:, t, :, 0]).view(*grouped, 1, 1)
        else:
            dA = torch.exp(A3.float() * dtf[:, t, :, :, None]).view(*grouped, dim, dstate)
        u = (dtf[:, t] * xf[:, t]).view(*grouped, dim, 1)
        # In place on our gathered copy: the state is the big tensor here (MBs per entry).
        h.mul_(dA).addcmul_(u, B4[:, t].float().view(batch, ngroups, 1, 1, dstate))
        y[:, t] = (h @ C4[:, t].float().view(batch, ngroups, 1, dstate, 1)).view(batch, nheads, dim)
    if D is not None:
        y += xf * (D.unsqueeze(0) if D.dim() == 1 else D).float()
    if z is not None:
        y *= F.silu(to4(z).float())
    new = h.view(batch, nheads, dim, dstate)
    pool.index_copy_(0, write, (new if valid is None else new[valid]).to(pool.dtype))
    if out is None:
        out = torch.empty(x.shape, dtype=x.dtype)
    out.copy_(y.view(out.shape))
    return out


def _exp_masked(seg: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # Masking before exp: the dropped entries are positive and could overflow to inf.
    return torch.exp(seg.masked_fill(~mask, -math.inf))


def mamba_chunk_scan_combined(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    initial_states: torch.Tensor | None = None,
    seq_idx: torch.Tensor | None = None,
    chunk_indices: torch.Tensor | None = None,
    chunk_offsets: torch.Tensor | None = None,
    cu_seqlens: torch.Tensor | None = None,
    dt_softplus: bool = False,
    dt_limit: tuple[float, float] = (0.0, float("inf")),
    out: torch.Tensor | None = None,
    return_final_states: bool = False,
    return_varlen_states: bool = False,
    return_intermediate_states: bool = False,
    state_dtype: torch.dtype | None = None,
    return_track_states: bool = False,
    track_seq_idx: torch.Tensor | None = None,
    track_end_locs: torch.Tensor | None = None,
) -> Any:
    """Chunked SSD scan (Mamba-2) over a varlen batch, as SGLang calls it: x (1, tokens,
    nheads, headdim), dt (1, tokens, nheads), A (nheads,), B/C (1, tokens, ngroups,
    dstate), D (nheads,) or (nheads, headdim), cu_seqlens delimiting the sequences and
    initial_states (nseq, nheads, headdim, dstate) or None. The output goes to ``out``;
    the return value mirrors the Triton function for the same flags: states on the
    chunk_size grid of the flat batch (1, nchunks, ...), final_states (1, ...),
    varlen_states (nseq, ...) and track_states (1, ntrack, ...) or None.
    seq_idx / chunk_indices / chunk_offsets are derived data and are not read."""
    if not return_varlen_states or cu_seqlens is None or x.shape[0] != 1:
        raise NotImplementedError(
            "CPU mamba_chunk_scan_combined: only the varlen form (batch 1, cu_seqlens, "
            "return_varlen_states=True) that SGLang uses"
        )
    _, ntot, nheads, headdim = x.shape
    ngroups, dstate = B.shape[2], B.shape[3]
    hpg = nheads // ngroups
    sdtype = state_dtype if state_dtype is not None else C.dtype
    bounds = cu_seqlens.tolist()
    nseq = len(bounds) - 1
    cs = math.gcd(chunk_size, _SCAN_CHUNK)

    # Pieces: (sequence, chunk of the cs grid) pairs, as the Triton "logical chunks". A
    # piece keeps its tokens at their offset in the chunk; the gaps have dt = 0, which
    # neither decays nor feeds the state, so padding is exact. Pieces are numbered
    # step-major (j-th piece of every sequence, sequences by piece count, descending) so
    # that the recurrence below works on contiguous slices.
    lens = torch.tensor([e - s for s, e in itertools.pairwise(bounds)], dtype=torch.int64)
    starts = torch.tensor(bounds[:-1], dtype=torch.int64)
    c_first = starts // cs
    c_last = torch.maximum(c_first, torch.div(starts + lens - 1, cs, rounding_mode="floor"))
    npc = c_last - c_first + 1
    order = torch.argsort(npc, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(nseq)
    steps = int(npc.max()) if nseq else 0
    active = npc[order][None, :] > torch.arange(steps)[:, None]  # (steps, nseq), prefixes
    counts = active.sum(1)
    off = torch.cumsum(counts, 0) - counts  # first piece of step j
    piece_seq = order.expand(steps, nseq)[active]
    chunk_of = c_first[piece_seq] + torch.arange(steps)[:, None].expand(steps, nseq)[active]
    npieces = piece_seq.numel()
    pos = chunk_of[:, None] * cs + torch.arange(cs)
    base = starts[piece_seq][:, None]
    valid = ((pos >= base) & (pos < base + lens[piece_seq][:, None])).reshape(-1)
    src = torch.where(valid, pos.reshape(-1), ntot)
    kept = valid.nonzero().squeeze(1)

    # One gather for x, B, C and dt (float32); row ntot stays zero for the gaps.
    dtf = dt.float() + (0.0 if dt_bias is None else dt_bias.float())
    if dt_softplus:
        dtf = F.softplus(dtf)  # threshold 20, as the kernel
    dtf = dtf.clamp(dt_limit[0], dt_limit[1])
    sizes = [nheads * headdim, ngroups * dstate, ngroups * dstate, nheads]
    feats = torch.zeros(ntot + 1, sum(sizes), dtype=torch.float32)
    for part, t in zip(feats[:ntot].split(sizes, 1), (x, B, C, dtf), strict=True):
        part.copy_(t.reshape(ntot, -1))
    xg, Bg, Cg, dtg = feats.index_select(0, src).view(npieces, cs, -1).split(sizes, -1)
    xk = xg.reshape(npieces, cs, ngroups, hpg, headdim).permute(0, 2, 3, 1, 4)
    Bk, Ck = (t.reshape(npieces, cs, ngroups, dstate).transpose(1, 2) for t in (Bg, Cg))
    dtk = dtg.transpose(1, 2).contiguous()  # (K, H, cs)
    acum = torch.cumsum(dtk * A.float()[:, None], dim=-1)  # (K, H, cs)
    decay = acum[..., -1]  # log decay across a whole piece

    # Intra-piece (diagonal block) term: attention-like, causal with segment decays.
    causal = torch.ones(cs, cs, dtype=torch.bool).tril()
    L = _exp_masked(acum[..., :, None] - acum[..., None, :], causal)  # (K, H, i, j)
    M = (Ck @ Bk.transpose(-1, -2)).unsqueeze(2) * L.view(npieces, ngroups, hpg, cs, cs)
    dtx = xk * dtk.view(npieces, ngroups, hpg, cs, 1)  # (K, G, hpg, cs, P)
    y = M @ dtx
    # Each piece's own contribution to the state, decayed to the piece's end.
    to_end = torch.exp(decay[..., None] - acum).view(npieces, ngroups, hpg, cs, 1)
    V = (dtx * to_end).transpose(-1, -2) @ Bk.unsqueeze(2)  # (K, G, hpg, P, N)
    V = V.reshape(npieces, nheads, headdim, dstate)

    # Inter-piece recurrence: a loop over piece positions (not tokens), batched over the
    # sequences; h[:n] are the sequences that still have a j-th piece.
    h = torch.zeros(nseq, nheads, headdim, dstate)
    if initial_states is not None:
        h = initial_states.float()[order]
    enter = torch.empty(npieces, nheads, headdim, dstate)
    piece_decay = torch.exp(decay)[..., None, None]
    for a, n in zip(off.tolist(), counts.tolist(), strict=True):
        enter[a : a + n] = h[:n]
        h[:n] = torch.addcmul(V[a : a + n], h[:n], piece_decay[a : a + n])
    final = h[rank]

    # State -> output (off-diagonal blocks), then skip connection and gate.
    Ek = enter.view(npieces, ngroups, hpg, headdim, dstate)
    y = y + (Ck.unsqueeze(2) @ Ek.transpose(-1, -2)) * torch.exp(acum).view(*y.shape[:-1], 1)
    if D is not None:
        y = y + xk * D.float().view(ngroups, hpg, 1, -1)  # -1: 1 or headdim
    y = y.permute(0, 3, 1, 2, 4).reshape(npieces * cs, nheads, headdim).index_select(0, kept)
    tokens = src[kept]
    if z is not None:
        y = y * F.silu(z.reshape(ntot, nheads, headdim).index_select(0, tokens).float())
    if out is None:
        out = torch.empty_like(x)
    # SGLang's out is a contiguous slice of its preallocated buffer: written in place.
    dense = out.is_contiguous()
    flat = out.view(ntot, nheads, headdim) if dense else out.new_empty(ntot, nheads, headdim)
    if tokens.numel() < ntot:
        flat.zero_()
    flat.index_copy_(0, tokens, y.to(out.dtype))
    if not dense:
        out.copy_(flat.view(out.shape))

    def state_at(seq: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
        """State of sequence `seq` after its tokens before flat position `end`."""
        seq, end = seq.to(torch.int64), end.to(torch.int64)
        last = torch.where(end > starts[seq], end - 1, starts[seq])  # no token: its start
        chunk = torch.div(last, cs, rounding_mode="floor")
        piece = off[chunk - c_first[seq]] + rank[seq]
        cut = end - chunk * cs  # tokens of the piece before end: [0, cs]
        res = enter[piece] * piece_decay[piece] + V[piece]
        part = (cut < cs).nonzero().flatten()
        if part.numel():  # off the cs grid: decay the piece's first `cut` tokens by hand
            p, r = piece[part], cut[part]
            a0 = F.pad(acum[p], (1, 0))  # exclusive prefix sums: a0[..., r]
            ar = a0.gather(-1, r.view(-1, 1, 1).expand(-1, nheads, 1))  # (Q, H, 1)
            before = torch.arange(cs)[None, None, :] < r[:, None, None]
            w = _exp_masked(ar - acum[p], before).view(-1, ngroups, hpg, cs, 1)
            inner = (dtx[p] * w).transpose(-1, -2) @ Bk[p].unsqueeze(2)
            inner = inner.reshape(-1, nheads, headdim, dstate)
            res[part] = enter[p] * torch.exp(ar)[..., None] + inner
        return res

    nchunks = -(-ntot // chunk_size)
    states = None
    if nchunks and (return_intermediate_states or return_track_states):
        # Triton's grid: entry k is the state at flat position k*chunk_size of the sequence
        # that owns token k*chunk_size - 1 (entry 0: the first initial state, or zeros).
        ends = torch.arange(1, nchunks) * chunk_size
        owner = torch.searchsorted(torch.tensor(bounds[1:]), ends - 1, right=True)
        grid = [enter[rank[:1]], state_at(owner, ends)]  # piece 0 of seq 0 enters with init
        states = torch.cat(grid).unsqueeze(0).to(sdtype)
    final_states, varlen_states = final[-1:].to(sdtype), final.to(sdtype)
    if return_track_states:
        track_states = None
        if track_seq_idx is not None and track_end_locs is not None and track_end_locs.numel():
            track_states = state_at(track_seq_idx, track_end_locs).unsqueeze(0).to(sdtype)
        return states, varlen_states, track_states
    if return_intermediate_states:
        if return_final_states:
            return states, final_states, varlen_states
        return states, varlen_states
    return (final_states, varlen_states) if return_final_states else varlen_states
