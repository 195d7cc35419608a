"""SGLang's out-of-tree platform for a plain CPU.

SGLang's in-tree CPU platform (``SGLANG_USE_CPU_ENGINE=1``) needs the Xeon AMX build of
``sgl_kernel``; without it every CustomOp and several layers reach for CUDA or Triton.
An out-of-tree platform (``PlatformEnum.OOT``) is SGLang's own seam for new hardware:
``is_cpu()`` stays False (no ``sgl_kernel`` op is ever called), every CustomOp runs its
``forward_native``, attention runs on the ``torch_native`` backend and sampling on the
``pytorch`` one. What that still leaves missing for Nemotron-H is installed after the
model loads (``patches.install``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from sglang.srt.platforms.cpu import CpuDeviceMixin
from sglang.srt.platforms.device_mixin import PlatformEnum
from sglang.srt.platforms.interface import PlatformCapabilities, SRTPlatform

from omni_sglang_cpu import PLATFORM_NAME

logger = logging.getLogger(__name__)

#: Share of the machine's RAM SGLang may plan for weights + KV pool when not told.
CPU_MEM_FRACTION_STATIC = 0.1
#: Mamba state slots (running requests plus cached prefixes) when not told: SGLang sizes
#: the pool from the memory left after the KV pool, which on a CPU is the machine's RAM.
CPU_MAX_MAMBA_CACHE_SIZE = 2048
#: Model dtypes SGLang's Mamba state pools take (SGLANG_MAMBA_CONV_DTYPE's values).
STATE_DTYPES = ("float32", "bfloat16", "float16")


def _has_extra_buffer(server_args: Any) -> bool:
    """Whether SGLang can run this model's Mamba radix cache with extra_buffer: its own
    list of architectures, or a registered hybrid model's spec. The architecture is read
    from a local checkpoint's config.json (nothing is loaded yet when the platform's
    defaults apply)."""
    from sglang.srt.arg_groups.overrides import _MAMBA_EXTRA_BUFFER_ARCHS
    from sglang.srt.configs.linear_attn_model_registry import get_linear_attn_spec_by_arch

    try:
        config = json.loads((Path(server_args.model_path) / "config.json").read_text())
    except (OSError, TypeError, ValueError):
        return False  # a hub id or no config: SGLang's own "auto"
    if not isinstance(config, dict):
        return False
    arch = (config.get("architectures") or [""])[0]
    spec = get_linear_attn_spec_by_arch(arch)
    return arch in _MAMBA_EXTRA_BUFFER_ARCHS or bool(spec and spec.support_mamba_cache_extra_buffer)


class CpuNativePlatform(CpuDeviceMixin, SRTPlatform):
    _enum = PlatformEnum.OOT
    device_name = "cpu"
    device_type = "cpu"
    # Everything off: no Triton, no graph capture, no pynccl (torch-native paths only).
    capabilities = PlatformCapabilities()

    def apply_server_args_defaults(self, server_args: Any) -> None:
        # Only what is unset: a user's explicit choice still reaches SGLang (and its
        # own error, if the backend cannot run here).
        if server_args.attention_backend is None:
            server_args.attention_backend = "torch_native"
        if server_args.sampling_backend is None:
            server_args.sampling_backend = "pytorch"
        if server_args.dtype == "auto":
            # SGLang's "auto" would load a float32 checkpoint as float16 here, and
            # half-precision matmuls on CPUs without AMX are slower than float32 ones.
            server_args.dtype = "float32"
        if server_args.mm_attention_backend is None:
            server_args.mm_attention_backend = "sdpa"
        if server_args.mem_fraction_static is None and server_args.max_total_tokens is None:
            # A GPU's memory is SGLang's alone; a CPU's is the machine's RAM, shared with
            # the other processes (SGLang's default would take most of it for the KV pool).
            server_args.mem_fraction_static = CPU_MEM_FRACTION_STATIC
        if server_args.max_mamba_cache_size is None:
            # Measured with the tiny Nemotron-H and --max-total-tokens 16384: SGLang's own
            # sizing gave 671005 slots, 5.8 GB allocated (and zeroed) in 22 s at every
            # start-up, for a machine that runs tens of requests at once. A hybrid model
            # that does not fit in this many slots' worth of RAM still gets SGLang's error.
            server_args.max_mamba_cache_size = CPU_MAX_MAMBA_CACHE_SIZE
        server_args.disable_cuda_graph = True
        # The overlap scheduler hides GPU kernel time behind CPU work; on a CPU there is
        # nothing to hide.
        server_args.disable_overlap_schedule = True
        if server_args.mamba_radix_cache_strategy == "auto" and _has_extra_buffer(server_args):
            # What SGLang's "auto" picks for such a model on a GPU (where the overlap
            # scheduler is on); with it off, "auto" would pick no_buffer, under which a
            # hybrid model never gets a prefix hit (the Mamba state at the prefix's end
            # is not kept). mamba_track (torch-native) takes the snapshots here.
            server_args.mamba_radix_cache_strategy = "extra_buffer"
        if server_args.dtype in STATE_DTYPES:
            # SGLang keeps Mamba conv states in bfloat16 whatever the model's dtype (the
            # dtype of GPU deployments) and its extra_buffer path copies activations into
            # them without a cast: a float32 model needs float32 conv states (exact ones).
            os.environ.setdefault("SGLANG_MAMBA_CONV_DTYPE", server_args.dtype)
        # An idle scheduler otherwise spins a whole core polling its sockets; on a GPU
        # host that is one core of many, on a laptop or CI runner it is half the machine
        # (measured: 101% of a core with no request). The sleeper blocks on the same
        # sockets with zmq.Poller, so a request still wakes it at once.
        server_args.sleep_on_idle = True

    def get_default_attention_backend(self) -> str:
        return "torch_native"

    def get_dispatch_key_name(self) -> str:
        return "native"

    def get_torch_distributed_backend_str(self) -> str:
        return "gloo"

    def get_group_coordinator_device(self, local_rank: int) -> torch.device:
        return torch.device("cpu")

    def is_pin_memory_available(self, device: Any = None) -> bool:
        return False

    def support_mamba_cache_extra_buffer(self) -> bool:
        return True

    def get_compile_backend(self, mode: str | None = None) -> str:
        return "eager"

    def init_backend(self) -> None:
        # SGLang decorates a few helpers with torch.compile (grouped top-k routing, seeded
        # sampling) whose default backend, inductor, compiles C++ on first call: 50 s of
        # the first request on 2 cores, again for new shapes. Eager runs them at once.
        torch._dynamo.config.disable = True
        logger.info("SGLang on the CPU through the %s platform (torch-native ops)", PLATFORM_NAME)

    def post_load_model(self, model: torch.nn.Module) -> None:
        from omni_sglang_cpu.patches import install

        install(model)
