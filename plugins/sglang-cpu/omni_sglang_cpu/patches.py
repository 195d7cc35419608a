"""What SGLang's model code still needs on a CPU once the platform is active.

Installed in the scheduler process after the model is loaded (``post_load_model``); the
Mamba ops only when the model has Mamba layers. Seven kinds, each idempotent:

- ``aten::mm.dtype`` (``torch.mm(..., out_dtype=float32)``, Nemotron-H's router) has a
  CUDA kernel only: a CPU one is registered with ``torch.library``.
- SGLang's native MoE knows silu/gelu/situ; Nemotron-H's experts use relu2 (not gated):
  a wrapper around ``moe_forward_native`` runs those, everything else goes through.
- Mamba-2: six module globals of ``sglang.srt.layers.attention.mamba.mamba`` are
  Triton-only or unbound off CUDA; they are pointed at ``mamba_ops`` (torch-native).
  These are SGLang internals, which is why the plugin pins SGLang's version. So are the
  two Triton state-tracking launchers of the hybrid backend that the ``extra_buffer``
  radix cache calls in decode (``mamba_track``).
- Extend attention over a cached prefix: SGLang's ``torch_native`` backend recomputes
  the prefix's rows of every extend (``extend_attention``).
- Pinned memory: SGLang's extra_buffer decode step pins a host tensor before copying it
  to the device, unconditionally (``ScheduleBatch.prepare_for_decode``); without CUDA,
  ``pin_memory()`` raises. On a machine with no accelerator there is nothing to pin
  for: ``Tensor.pin_memory`` returns the tensor itself there.
- Media features in the model's dtype: SGLang's Nemotron Omni processor casts pixel
  values to bfloat16 (the dtype of every GPU deployment); a float32 model (this
  platform's default) then fails in its vision tower's first linear. The model's
  ``get_*_feature`` methods get their items' features cast to the model's dtype first.
- Packed vision sequences on SDPA: RADIO packs a video's tubelets (and several images)
  into one sequence with ``cu_seqlens``, as the GPU backends' varlen kernels take it.
  SGLang's SDPA backend builds a per-sequence padding mask for a batch of one there
  ([segments, 1, s, s] against [1, heads, s, s]: a shape error); it gets the
  block-diagonal mask that ``cu_seqlens`` means (the backend's own flattened mask).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

MAMBA_MODULE = "sglang.srt.layers.attention.mamba.mamba"
HYBRID_BACKEND_MODULE = "sglang.srt.layers.attention.hybrid_linear_attn_backend"
MOE_NATIVE_MODULE = "sglang.srt.layers.moe.fused_moe_native"
_library: Any = None  # keeps the torch.library registration alive


def _mm_dtype_cpu(a: torch.Tensor, b: torch.Tensor, out_dtype: torch.dtype) -> torch.Tensor:
    # Upcasting first gives the float32 accumulation the CUDA kernel promises.
    return torch.mm(a.to(out_dtype), b.to(out_dtype))


def install_mm_out_dtype() -> None:
    global _library
    if _library is not None:
        return
    try:
        torch.mm(torch.ones(1, 1), torch.ones(1, 1), out_dtype=torch.float32)
        return  # a later torch has its own CPU kernel: keep it
    except (NotImplementedError, RuntimeError):
        pass
    _library = torch.library.Library("aten", "IMPL")
    _library.impl("mm.dtype", _mm_dtype_cpu, "CPU")


def relu2_moe(layer: Any, x: torch.Tensor, topk_output: Any) -> torch.Tensor:
    """Non-gated experts with relu(x)^2, grouped by expert (one matmul pair per expert
    that has tokens, not one per token)."""
    topk_weights, topk_ids, _ = topk_output
    num_tokens, top_k = topk_ids.shape
    flat_ids = topk_ids.reshape(-1).to(torch.int64)
    token_of = torch.arange(num_tokens, device=x.device).repeat_interleave(top_k)
    weights = topk_weights.reshape(-1, 1).to(torch.float32)
    order = flat_ids.argsort(stable=True)
    counts = torch.bincount(flat_ids, minlength=layer.w13_weight.shape[0]).tolist()
    w13_bias = getattr(layer, "w13_weight_bias", None)
    w2_bias = getattr(layer, "w2_weight_bias", None)
    out = torch.zeros(num_tokens, layer.w2_weight.shape[1], dtype=torch.float32, device=x.device)
    start = 0
    for expert, count in enumerate(counts):
        if count == 0:
            continue
        picked = order[start : start + count]
        start += count
        tokens = token_of[picked]
        hidden = F.linear(x[tokens], layer.w13_weight[expert])
        if w13_bias is not None:
            hidden = hidden + w13_bias[expert]
        hidden = torch.square(F.relu(hidden))
        expert_out = F.linear(hidden, layer.w2_weight[expert])
        if w2_bias is not None:
            expert_out = expert_out + w2_bias[expert]
        out.index_add_(0, tokens, expert_out.to(torch.float32) * weights[picked])
    return out.to(x.dtype)


def install_relu2_moe() -> None:
    import importlib

    module: Any = importlib.import_module(MOE_NATIVE_MODULE)
    original = module.moe_forward_native
    if getattr(original, "_omni_relu2", False):
        return

    def moe_forward_native(layer: Any, x: Any, topk_output: Any, moe_runner_config: Any) -> Any:
        if moe_runner_config.activation == "relu2" and not moe_runner_config.is_gated:
            return relu2_moe(layer, x, topk_output)
        return original(layer, x, topk_output, moe_runner_config)

    moe_forward_native._omni_relu2 = True  # type: ignore[attr-defined]
    # unquant.py imports the function at call time, so the module attribute is enough.
    module.moe_forward_native = moe_forward_native


def has_mamba_layers(model: torch.nn.Module) -> bool:
    module = sys.modules.get(MAMBA_MODULE)
    mixer = getattr(module, "MambaMixer2", None)
    return mixer is not None and any(isinstance(m, mixer) for m in model.modules())


def install_mamba_ops() -> None:
    from omni_sglang_cpu import mamba_ops

    module = sys.modules[MAMBA_MODULE]

    replacements = {
        "causal_conv1d_fn": mamba_ops.causal_conv1d_fn,
        "causal_conv1d_fn_triton": mamba_ops.causal_conv1d_fn,
        "causal_conv1d_update": mamba_ops.causal_conv1d_update,
        "causal_conv1d_update_triton": mamba_ops.causal_conv1d_update,
        "mamba_chunk_scan_combined": mamba_ops.mamba_chunk_scan_combined,
        "selective_state_update": mamba_ops.selective_state_update,
    }
    for name, fn in replacements.items():
        setattr(module, name, fn)
    from omni_sglang_cpu import mamba_track

    backend = sys.modules[HYBRID_BACKEND_MODULE]
    for name in ("track_mamba_states_if_needed", "track_mamba_states_all_layers"):
        setattr(backend, name, getattr(mamba_track, name))


#: The per-modality encoder entry points of SGLang's multimodal models.
FEATURE_METHODS = ("get_image_feature", "get_video_feature", "get_audio_feature")


def _model_dtype(model: torch.nn.Module) -> torch.dtype | None:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), None)


def install_feature_dtype(model: torch.nn.Module) -> list[str]:
    """Wrap the model's ``get_*_feature`` methods (on the instance, which is what the
    forward pass looks up) so floating features arrive in the model's dtype."""
    dtype = _model_dtype(model)
    wrapped: list[str] = []
    for name in FEATURE_METHODS:
        method = getattr(model, name, None)
        if dtype is None or method is None or getattr(method, "_omni_dtype", False):
            continue

        def cast_first(items: list[Any], _method: Any = method) -> Any:
            for item in items:
                feature = getattr(item, "feature", None)
                if isinstance(feature, torch.Tensor) and feature.is_floating_point():
                    item.feature = feature.to(dtype)
            return _method(items)

        cast_first._omni_dtype = True  # type: ignore[attr-defined]
        setattr(model, name, cast_first)
        wrapped.append(name)
    return wrapped


VISION_MODULE = "sglang.srt.layers.attention.vision"


def install_packed_sdpa_mask() -> None:
    import importlib

    backend: Any = importlib.import_module(VISION_MODULE).VisionSdpaAttention
    original = backend.forward
    if getattr(original, "_omni_packed", False):
        return

    def forward(
        self: Any,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        bsz: int,
        cu_seqlens: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        packed = bsz == 1 and cu_seqlens is not None and len(cu_seqlens) > 2
        if packed and attention_mask is None and not self.flatten_batch:
            attention_mask = self.generate_patch_attention_mask(
                q.shape[0], cu_seqlens, flatten_batch=True
            )
        return original(self, q, k, v, bsz, cu_seqlens, attention_mask, **kwargs)

    forward._omni_packed = True  # type: ignore[attr-defined]
    backend.forward = forward


def install_unpinned_memory() -> None:
    # Only where no CUDA exists: with a GPU present, pinning means what it says.
    if torch.cuda.is_available() or getattr(torch.Tensor.pin_memory, "_omni_unpinned", False):
        return

    def pin_memory(self: torch.Tensor, device: Any = None) -> torch.Tensor:
        return self

    pin_memory._omni_unpinned = True  # type: ignore[attr-defined]
    torch.Tensor.pin_memory = pin_memory  # type: ignore[method-assign,assignment]


TORCH_NATIVE_MODULE = "sglang.srt.layers.attention.torch_native_backend"


def install_plain_extend() -> None:
    import importlib

    from omni_sglang_cpu import extend_attention

    module: Any = importlib.import_module(TORCH_NATIVE_MODULE)
    extend_attention.install(module.TorchNativeAttnBackend)


def install(model: torch.nn.Module) -> None:
    install_unpinned_memory()
    install_plain_extend()
    install_mm_out_dtype()
    install_relu2_moe()
    if has_mamba_layers(model):
        install_mamba_ops()
    if install_feature_dtype(model):
        install_packed_sdpa_mask()
    logger.info("torch-native CPU ops installed (mm out_dtype, relu2 MoE, Mamba-2, media)")
