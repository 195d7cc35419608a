"""What every route needs: the config, the engine, and the plugins picked for this server."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

from omni_sglang.admission import Admission
from omni_sglang.config import ServerConfig
from omni_sglang.engines.base import Engine, ModelInfo
from omni_sglang.errors import ContextLengthExceededError, EngineError, ModelNotFoundError
from omni_sglang.output.logprobs import TokenNames
from omni_sglang.plugin_api import (
    LogitProcessorPlugin,
    ModalityProcessor,
    ModalityProcessorPlugin,
    ReasoningParserPlugin,
    ToolParserPlugin,
)
from omni_sglang.plugins import PluginRegistry
from omni_sglang.responses_store import ResponseStore


@dataclass
class ServerPlugins:
    reasoning: ReasoningParserPlugin | None = None
    tools: ToolParserPlugin | None = None
    thinking_budget: LogitProcessorPlugin | None = None
    modality: ModalityProcessorPlugin | None = None

    @classmethod
    def from_config(cls, config: ServerConfig, registry: PluginRegistry) -> ServerPlugins:
        """Resolve the configured names now, so a typo fails at start-up, not per request."""

        def pick(kind: str, name: str | None) -> Any:
            return registry.get(kind, name) if name else None

        return cls(
            reasoning=pick("reasoning_parsers", config.reasoning_parser),
            tools=pick("tool_parsers", config.tool_parser),
            thinking_budget=pick("logit_processors", config.thinking_budget_processor),
            modality=pick("modality_processors", config.modality_processor),
        )


def build_media_loader(config: ServerConfig) -> Any:
    from omni_sglang.media import FetchPolicy, MediaCache, MediaLimits, MediaLoader

    limits = MediaLimits(max_items_per_request=config.max_media_items)
    policy = FetchPolicy(
        limits=limits,
        allowed_domains=config.allowed_media_domains,
        allow_private_hosts=config.allow_private_media_hosts,
        allowed_local_path=config.allowed_local_media_path,
    )
    return MediaLoader(policy, MediaCache())


@dataclass
class ServerState:
    config: ServerConfig
    engine: Engine
    plugins: ServerPlugins
    ready: bool = False
    draining: bool = False
    started_at: float = field(default_factory=time.time)
    #: The budget plugin's processor as SGLang serializes it (``to_str()``); made at
    #: start-up because it imports SGLang (seconds), never on a request's path.
    budget_processor: str | None = None
    #: The modality processor for this model and the media loader (when configured).
    modality: ModalityProcessor | None = None
    media_loader: Any = None
    admission: Admission = field(init=False)
    max_prompt_chars: int | None = None

    def __post_init__(self) -> None:
        self.admission = Admission(
            self.config.max_concurrent_requests, self.config.request_timeout_seconds
        )

    def start_draining(self) -> None:
        """SIGTERM: readiness turns 503 and new work is refused; in-flight work goes on."""
        self.draining = True
        self.ready = False
        self.admission.draining = True

    @property
    def tokenizer(self) -> Any:
        return self.engine.tokenizer

    @functools.cached_property
    def token_names(self) -> TokenNames:
        """Tokens as logprobs name them (cached: the same few ids recur)."""
        return TokenNames(self.tokenizer)

    @functools.cached_property
    def responses(self) -> ResponseStore:
        return ResponseStore(self.config.responses_store_size, self.config.responses_store_bytes)

    @property
    def model_info(self) -> ModelInfo:
        return self.engine.model_info()

    @property
    def model_names(self) -> list[str]:
        return self.config.model_names

    def prepare_limits(self) -> None:
        """The longest prompt, in characters, that could still fit the context: context
        tokens x the longest token's text. Longer prompts are refused before the costly
        render + tokenize (a 6 MiB prompt takes seconds of a worker thread)."""
        tok = self.tokenizer
        if not hasattr(tok, "batch_decode"):  # a plugin engine's own tokenizer: no bound
            return
        longest = max((len(t) for t in tok.batch_decode([[i] for i in range(len(tok))])), default=1)
        self.max_prompt_chars = self.model_info.max_model_len * max(longest, 1)

    def check_prompt_chars(self, chars: int) -> None:
        if self.max_prompt_chars is not None and chars > self.max_prompt_chars:
            raise ContextLengthExceededError(
                f"the prompt has {chars} characters, more than this model's context length of "
                f"{self.model_info.max_model_len} tokens can hold; please shorten it",
                "messages",
            )

    def prepare_plugins(self) -> None:
        """Start-up work for the plugins (called off the event loop, engine started)."""
        self.prepare_limits()
        if self.plugins.thinking_budget is not None:
            cls: Any = self.plugins.thinking_budget.processor_class()
            self.budget_processor = str(cls.to_str())
        if self.plugins.modality is not None:
            info = self.model_info
            # The served context bounds the image token budget (SGLang's rule).
            hf_config = {**info.extra.get("config", {}), "max_model_len": info.max_model_len}
            self.modality = self.plugins.modality.create(hf_config, self.tokenizer)
            self.media_loader = build_media_loader(self.config)

    def budget_processor_string(self) -> str:
        if self.budget_processor is None:
            raise EngineError("the thinking-budget processor is not prepared")
        return self.budget_processor

    def check_model(self, name: str) -> str:
        if name not in self.model_names:
            raise ModelNotFoundError(
                f"The model {name!r} does not exist here; served models: "
                f"{', '.join(self.model_names)}",
                param="model",
            )
        return name
