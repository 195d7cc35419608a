"""Which device SGLang's runtime will run on here, checked before it starts.

On a CUDA GPU SGLang runs as it ships. Without one it needs an out-of-tree platform
plugin (entry-point group ``sglang.srt.platforms``): ours is ``omni-sglang-cpu``
(plugins/sglang-cpu), but any plugin that activates here will do. This asks the same
question SGLang's platform discovery asks, so a missing plugin or a plugin refusing the
installed SGLang version is one start-up error line instead of a scheduler traceback.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points

from omni_sglang.errors import ConfigError

PLATFORM_GROUP = "sglang.srt.platforms"


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def active_platform_plugins() -> list[str]:
    """Names of the installed platform plugins that activate on this machine.

    A plugin that raises (e.g. a version check) becomes a ConfigError carrying its
    message: SGLang itself would log it and fall back to a platform that cannot run."""
    # The same filters SGLang's discovery applies: SGLANG_PLATFORM names one plugin,
    # SGLANG_PLUGINS is an allow-list over this group too.
    selected = os.environ.get("SGLANG_PLATFORM")
    allowed = {n.strip() for n in os.environ.get("SGLANG_PLUGINS", "").split(",") if n.strip()}
    active = []
    for ep in entry_points(group=PLATFORM_GROUP):
        if (selected and ep.name != selected) or (allowed and ep.name not in allowed):
            continue
        try:
            result = ep.load()()
        except Exception as exc:
            raise ConfigError(
                f"SGLang platform plugin {ep.name!r} refused to start: {exc}"
            ) from exc
        if result is not None:
            active.append(ep.name)
    return active


def sglang_device() -> str:
    """``cuda``, or ``cpu`` through a platform plugin; else a ConfigError saying what to do."""
    if _cuda_available():
        return "cuda"
    if active_platform_plugins():
        return "cpu"
    raise ConfigError(
        "the sglang engine needs a CUDA GPU or an SGLang platform plugin for this machine, "
        "and neither is here: install plugins/sglang-cpu (`pip install -e plugins/sglang-cpu`, "
        "done by `make setup`) or run with --engine cpu"
    )
