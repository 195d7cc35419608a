"""The ``sglang.srt.platforms`` entry point: whether this platform applies here.

Kept free of SGLang imports: SGLang calls it while its own platform module is still
being imported, and the platform class is loaded by the dotted path returned.
"""

from __future__ import annotations

import os

import torch

from omni_sglang_cpu import PLATFORM_NAME
from omni_sglang_cpu.version import check_sglang_version

PLATFORM_CLASS = "omni_sglang_cpu.platform.CpuNativePlatform"
#: SGLang's opt-in for its AMX CPU build: whoever sets it wants that path, not ours.
SGLANG_AMX_ENGINE_ENV = "SGLANG_USE_CPU_ENGINE"


def accelerator_present() -> bool:
    """Any device SGLang has an in-tree platform for (CUDA/ROCm, XPU, NPU, MPS)."""
    if torch.cuda.is_available():
        return True
    if hasattr(torch, "xpu") and torch.xpu.is_available():
        return True
    if hasattr(torch, "npu") and torch.npu.is_available():
        return True
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def activate() -> str | None:
    """This platform's class path, or None.

    Active when ``SGLANG_PLATFORM=omni_cpu`` asks for it, or, when nothing is asked,
    on a machine with no accelerator; never on a GPU unless asked, so installing this
    package changes nothing there. A mismatched SGLang version raises (see version.py)."""
    asked = os.environ.get("SGLANG_PLATFORM") == PLATFORM_NAME
    if not asked and (os.environ.get(SGLANG_AMX_ENGINE_ENV) == "1" or accelerator_present()):
        return None
    check_sglang_version()
    return PLATFORM_CLASS
