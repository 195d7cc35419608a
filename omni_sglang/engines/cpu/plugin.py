"""Entry point of the ``cpu`` engine (declared in pyproject.toml like any plugin)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omni_sglang.plugin_api import EnginePlugin

if TYPE_CHECKING:
    from omni_sglang.config import ServerConfig
    from omni_sglang.engines.base import Engine


class CpuEnginePlugin(EnginePlugin):
    description = "Hugging Face transformers models on the CPU, SGLang request semantics"

    def build(self, config: ServerConfig) -> Engine:
        from omni_sglang.engines.cpu.engine import CpuEngine

        return CpuEngine(
            config.resolved_model_path(),
            max_model_len=config.max_model_len,
            threads=config.cpu_threads,
            max_running_requests=config.cpu_max_running_requests,
        )
