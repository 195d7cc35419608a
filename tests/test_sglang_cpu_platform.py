"""The omni-sglang-cpu platform plugin's own pieces: when it activates, the SGLang
version it insists on, and its torch-native ops against transformers' reference maths.
(That SGLang then really serves through it is what every ``[sglang]`` HTTP test shows.)

SGLang is imported first, as in its own processes: its platform discovery imports this
plugin's platform class, and importing that class first would make the discovery find a
half-imported module."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import sglang.srt.utils  # noqa: F401 - as in SGLang's processes: it resolves the platform
import torch

from omni_sglang_cpu import PLATFORM_NAME, SGLANG_VERSION, activation, version
from tests.conftest import CACHE


def test_activates_on_a_machine_without_accelerators(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SGLANG_PLATFORM", raising=False)
    monkeypatch.delenv("SGLANG_USE_CPU_ENGINE", raising=False)
    assert not torch.cuda.is_available()  # this suite runs on CPU-only machines
    assert activation.activate() == activation.PLATFORM_CLASS


def test_never_activates_beside_a_gpu_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SGLANG_PLATFORM", raising=False)
    monkeypatch.setattr(activation, "accelerator_present", lambda: True)
    assert activation.activate() is None
    monkeypatch.setenv("SGLANG_PLATFORM", PLATFORM_NAME)  # asked for by name: on anyway
    assert activation.activate() == activation.PLATFORM_CLASS


def test_steps_aside_for_sglangs_own_amx_cpu_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SGLANG_PLATFORM", raising=False)
    monkeypatch.setenv("SGLANG_USE_CPU_ENGINE", "1")
    assert activation.activate() is None


def test_another_sglang_version_is_refused_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SGLANG_PLATFORM", raising=False)
    monkeypatch.setattr(activation, "accelerator_present", lambda: False)
    monkeypatch.setattr(version, "installed_sglang_version", lambda: "0.6.0")
    with pytest.raises(version.SGLangVersionMismatch) as caught:
        activation.activate()
    message = str(caught.value)
    assert "0.6.0" in message and f"sglang=={SGLANG_VERSION}" in message
    assert "uninstall omni-sglang-cpu" in message


def test_the_installed_sglang_is_the_one_the_plugin_was_written_for() -> None:
    version.check_sglang_version()


def unset_args(**chosen: object) -> SimpleNamespace:
    """The server args the platform reads, as SGLang's parser leaves them unset."""
    unset = {
        "dtype": "auto",
        "attention_backend": None,
        "sampling_backend": None,
        "mm_attention_backend": None,
        "mem_fraction_static": None,
        "max_total_tokens": None,
        "max_mamba_cache_size": None,
        "mamba_radix_cache_strategy": "auto",
        "model_path": None,
    }
    return SimpleNamespace(**{**unset, **chosen})


def test_server_arg_defaults_keep_what_the_user_chose(
    monkeypatch: pytest.MonkeyPatch, tiny_model_path: Path
) -> None:
    monkeypatch.setattr(os, "environ", {})  # the conv dtype the platform sets stays here
    from omni_sglang_cpu.platform import (
        CPU_MAX_MAMBA_CACHE_SIZE,
        CPU_MEM_FRACTION_STATIC,
        CpuNativePlatform,
    )

    unset = unset_args(model_path=str(tiny_model_path))
    CpuNativePlatform().apply_server_args_defaults(unset)
    assert (unset.attention_backend, unset.sampling_backend) == ("torch_native", "pytorch")
    assert unset.mem_fraction_static == CPU_MEM_FRACTION_STATIC and unset.dtype == "float32"
    assert unset.disable_cuda_graph and unset.disable_overlap_schedule  # type: ignore[attr-defined]
    assert unset.sleep_on_idle  # type: ignore[attr-defined]
    assert unset.max_mamba_cache_size == CPU_MAX_MAMBA_CACHE_SIZE
    # Nemotron-H's prefix hits need Mamba state snapshots: SGLang's GPU pick, not "auto"
    # (which, with the overlap scheduler off, would keep none); float32 conv states.
    assert unset.mamba_radix_cache_strategy == "extra_buffer"
    assert os.environ["SGLANG_MAMBA_CONV_DTYPE"] == "float32"
    chosen = unset_args(
        dtype="bfloat16",
        attention_backend="triton",
        sampling_backend="flashinfer",
        mm_attention_backend="fa3",
        max_total_tokens=4096,
        max_mamba_cache_size=64,
        mamba_radix_cache_strategy="no_buffer",
        model_path=str(tiny_model_path),
    )
    CpuNativePlatform().apply_server_args_defaults(chosen)
    assert (chosen.attention_backend, chosen.sampling_backend) == ("triton", "flashinfer")
    assert chosen.dtype == "bfloat16"
    assert chosen.mem_fraction_static is None  # a KV size was given: no fraction imposed
    assert chosen.max_mamba_cache_size == 64
    assert chosen.mamba_radix_cache_strategy == "no_buffer"
    assert os.environ["SGLANG_MAMBA_CONV_DTYPE"] == "float32"  # the first one's, kept


@pytest.mark.parametrize("model", ["tiny-llama", "hub-id"])
def test_other_models_keep_sglangs_own_cache_strategy(
    monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    """Attention-only models and checkpoints without a local config.json: SGLang's
    "auto" as it is (extra_buffer on a model SGLang does not list would be its error)."""
    from omni_sglang.tiny.model import ensure_tiny_model
    from omni_sglang_cpu.platform import CpuNativePlatform

    monkeypatch.setattr(os, "environ", {})
    path = str(ensure_tiny_model(CACHE, model)) if model != "hub-id" else "nvidia/some-model"
    args = unset_args(model_path=path)
    CpuNativePlatform().apply_server_args_defaults(args)
    assert args.mamba_radix_cache_strategy == "auto"


def test_nano_omni_gets_extra_buffer_once_our_plugin_registered_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SGLang 0.5.23 does not list Nano Omni's architecture among its hybrid models; the
    Nemotron plugin registers it (in every SGLang process, before the server args)."""
    from omni_sglang.tiny.model import ensure_tiny_model
    from omni_sglang_cpu.platform import CpuNativePlatform
    from omni_sglang_nemotron.sglang_plugin import register_hybrid_cache

    monkeypatch.setattr(os, "environ", {})
    register_hybrid_cache()
    register_hybrid_cache()  # idempotent: SGLang may load plugins twice in a process
    from sglang.srt.configs.linear_attn_model_registry import _LINEAR_ATTN_MODEL_REGISTRY

    omni = [
        s for s in _LINEAR_ATTN_MODEL_REGISTRY if "NemotronH_Nano_Omni_Reasoning_V3" in s.arch_names
    ]
    assert len(omni) == 1 and omni[0].uses_mamba_radix_cache
    args = unset_args(model_path=str(ensure_tiny_model(CACHE, "tiny-omni")))
    CpuNativePlatform().apply_server_args_defaults(args)
    assert args.mamba_radix_cache_strategy == "extra_buffer"


def test_mm_with_out_dtype_runs_on_the_cpu() -> None:
    from omni_sglang_cpu.patches import install_mm_out_dtype

    install_mm_out_dtype()
    a, b = torch.randn(5, 7).bfloat16(), torch.randn(7, 3).bfloat16()
    out = torch.mm(a, b, out_dtype=torch.float32)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, a.double().mm(b.double()).float(), rtol=1e-5, atol=1e-5)


def test_relu2_moe_equals_transformers_nemotron_h_experts() -> None:
    from transformers import NemotronHConfig
    from transformers.models.nemotron_h.modeling_nemotron_h import NemotronHExperts

    from omni_sglang_cpu.patches import relu2_moe

    torch.manual_seed(0)
    config = NemotronHConfig(
        hidden_size=32, n_routed_experts=6, moe_intermediate_size=24, mlp_hidden_act="relu2"
    )
    experts = NemotronHExperts(config)
    torch.nn.init.normal_(experts.up_proj, std=0.2)
    torch.nn.init.normal_(experts.down_proj, std=0.2)
    x = torch.randn(11, 32)
    top_k_index = torch.stack([torch.randperm(6)[:3] for _ in range(11)])
    top_k_weights = torch.rand(11, 3)
    expected = experts(x, top_k_index, top_k_weights)
    # SGLang's FusedMoE layout: w13 (experts, intermediate, hidden), w2 (experts, hidden, inter).
    layer = SimpleNamespace(w13_weight=experts.up_proj.data, w2_weight=experts.down_proj.data)
    got = relu2_moe(layer, x, (top_k_weights, top_k_index, None))
    torch.testing.assert_close(got, expected.to(got.dtype), rtol=1e-5, atol=1e-5)


def test_other_activations_still_reach_sglangs_native_moe() -> None:
    import sglang.srt.layers.moe.fused_moe_native as native

    from omni_sglang_cpu.patches import install_relu2_moe

    install_relu2_moe()
    wrapped = native.moe_forward_native
    assert getattr(wrapped, "_omni_relu2", False)
    install_relu2_moe()  # idempotent: no second wrapper
    assert native.moe_forward_native is wrapped
    torch.manual_seed(1)
    layer = SimpleNamespace(
        num_experts=2, w13_weight=torch.randn(2, 8, 4), w2_weight=torch.randn(2, 4, 4)
    )
    cfg = SimpleNamespace(
        activation="silu", is_gated=True, apply_router_weight_on_input=False, gemm1_alpha=None
    )
    x, ids, weights = torch.randn(3, 4), torch.tensor([[0], [1], [0]]), torch.ones(3, 1)
    gate, up = torch.einsum("ti,eoi->teo", x, layer.w13_weight).chunk(2, dim=-1)
    per_expert = torch.einsum("tei,eoi->teo", torch.nn.functional.silu(gate) * up, layer.w2_weight)
    expected = per_expert[torch.arange(3), ids[:, 0]]
    torch.testing.assert_close(wrapped(layer, x, (weights, ids, None), cfg), expected)


def test_packed_vision_sequences_attend_within_their_segment_only() -> None:
    """RADIO packs a video's tubelets into one sequence with ``cu_seqlens``; on SDPA
    each segment must attend to itself alone, as each would unpacked (the reference)."""
    from sglang.srt.layers.attention.vision import VisionSdpaAttention

    from omni_sglang_cpu.patches import install_packed_sdpa_mask

    install_packed_sdpa_mask()
    install_packed_sdpa_mask()  # idempotent
    assert getattr(VisionSdpaAttention.forward, "_omni_packed", False)
    torch.manual_seed(2)
    heads, size, lengths = 2, 8, [5, 3, 6]
    attn = VisionSdpaAttention(head_dim=size, num_heads=heads, num_kv_heads=heads)
    q, k, v = (torch.randn(sum(lengths), heads, size) for _ in range(3))
    cu_seqlens = torch.tensor([0, 5, 8, 14], dtype=torch.int32)
    packed = attn(q, k, v, bsz=1, cu_seqlens=cu_seqlens)
    expected = []
    for start, end in zip(cu_seqlens[:-1].tolist(), cu_seqlens[1:].tolist(), strict=True):
        one = torch.tensor([0, end - start], dtype=torch.int32)
        expected.append(attn(q[start:end], k[start:end], v[start:end], bsz=1, cu_seqlens=one))
    torch.testing.assert_close(packed, torch.cat(expected), rtol=1e-5, atol=1e-5)


def test_media_features_reach_the_encoders_in_the_models_dtype() -> None:
    """SGLang's Nemotron processor hands bfloat16 pixels; a float32 model gets float32."""
    from sglang.srt.managers.schedule_batch import Modality, MultimodalDataItem

    from omni_sglang_cpu.patches import install_feature_dtype

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(4, 2)

        def get_image_feature(self, items: list[MultimodalDataItem]) -> torch.Tensor:
            return self.proj(torch.cat([item.feature for item in items]))

    model = Model()
    pixels = torch.randn(3, 4).bfloat16()
    try:
        model.get_image_feature([MultimodalDataItem(modality=Modality.IMAGE, feature=pixels)])
        raise AssertionError("a bfloat16 feature into a float32 linear should fail unwrapped")
    except RuntimeError:
        pass
    assert install_feature_dtype(model) == ["get_image_feature"]
    assert install_feature_dtype(model) == []  # idempotent
    out = model.get_image_feature([MultimodalDataItem(modality=Modality.IMAGE, feature=pixels)])
    torch.testing.assert_close(out, model.proj(pixels.float()))


def test_pinning_is_a_no_op_without_an_accelerator() -> None:
    from omni_sglang_cpu.patches import install_unpinned_memory

    install_unpinned_memory()
    host = torch.arange(4)
    assert host.pin_memory() is host
