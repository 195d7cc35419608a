"""The ``sglang`` engine: SGLang's in-process ``sglang.Engine`` on GPUs.

The engine contract already is SGLang's request schema, so requests pass through to
``Engine.async_generate`` unchanged; only SGLang's cumulative streaming text is turned
into deltas. Server arguments go through SGLang's own parser, so an unknown or removed
flag fails at start-up with SGLang's message. SGLang is imported only here, inside
functions: it costs 10-18 s and about 1 GB per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from omni_sglang.engines.base import Engine, EngineOutput, EngineRequest, FinishReason, ModelInfo
from omni_sglang.errors import ConfigError, EngineError
from omni_sglang.plugin_api import EnginePlugin

if TYPE_CHECKING:
    from omni_sglang.config import ServerConfig

logger = logging.getLogger(__name__)


def server_args_argv(config: ServerConfig) -> list[str]:
    """The SGLang command line our config stands for (user's ``--`` args last: they win)."""
    if not config.model_path:
        raise ConfigError("the sglang engine needs --model-path (a checkpoint folder or hub id)")
    argv = ["--model-path", config.model_path, "--enable-custom-logit-processor"]
    if config.served_model_name:
        argv += ["--served-model-name", config.served_model_name[0]]
    if config.max_model_len:
        argv += ["--context-length", str(config.max_model_len)]
    argv += ["--log-level", config.log_level]
    return argv + list(config.sglang_args)


def build_server_args(config: ServerConfig) -> Any:
    """Parse with SGLang's parser; its argparse error becomes a ConfigError."""
    from sglang.srt.server_args import prepare_server_args

    argv = server_args_argv(config)
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return prepare_server_args(argv)
    except SystemExit as exc:
        detail = stderr.getvalue().strip().splitlines()
        raise ConfigError(
            "SGLang rejected its server arguments: " + (detail[-1] if detail else str(exc))
        ) from None


def _finish_reason(meta: dict[str, Any]) -> FinishReason | None:
    raw = meta.get("finish_reason")
    if not raw:
        return None
    return FinishReason(raw.get("type", "stop"), raw.get("matched"), raw.get("message"))


def require_gpu() -> None:
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            "the sglang engine needs a CUDA GPU and none is visible; "
            "run with --engine cpu on this machine"
        )


class SGLangEngine(Engine):
    def __init__(self, config: ServerConfig):
        self._config = config
        self._server_args = build_server_args(config)
        self._engine: Any = None
        self.tokenizer: Any = None

    async def start(self) -> None:
        def _start() -> Any:
            import sglang

            return sglang.Engine(server_args=self._server_args)

        self._engine = await asyncio.to_thread(_start)
        self.tokenizer = self._engine.tokenizer_manager.tokenizer

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineOutput]:
        if self._engine is None:
            raise EngineError("the sglang engine is not started")
        stream = await self._engine.async_generate(
            prompt=request.prompt,
            input_ids=request.input_ids,
            sampling_params=request.sampling_params,
            image_data=request.image_data,
            video_data=request.video_data,
            audio_data=request.audio_data,
            custom_logit_processor=request.custom_logit_processor,
            return_logprob=request.return_logprob,
            logprob_start_len=request.logprob_start_len,
            top_logprobs_num=request.top_logprobs_num,
            stream=True,
            rid=request.rid,
        )
        sent_text: dict[int, int] = {}
        sent_ids: dict[int, int] = {}
        try:
            async for chunk in stream:
                index = int(chunk.get("index", 0))
                meta = chunk.get("meta_info", {})
                text = chunk.get("text", "")
                ids = chunk.get("output_ids") or []
                start_text, start_ids = sent_text.get(index, 0), sent_ids.get(index, 0)
                sent_text[index], sent_ids[index] = len(text), len(ids)
                yield EngineOutput(
                    index=index,
                    text=text[start_text:],
                    token_ids=list(ids[start_ids:]),
                    prompt_tokens=int(meta.get("prompt_tokens", 0)),
                    completion_tokens=int(meta.get("completion_tokens", 0)),
                    cached_tokens=int(meta.get("cached_tokens", 0)),
                    finish_reason=_finish_reason(meta),
                    output_token_logprobs=meta.get("output_token_logprobs"),
                    input_token_logprobs=meta.get("input_token_logprobs"),
                )
        finally:
            with contextlib.suppress(Exception):
                self._engine.tokenizer_manager.abort_request(rid=request.rid)

    async def abort(self, rid: str) -> None:
        if self._engine is not None:
            self._engine.tokenizer_manager.abort_request(rid=rid)

    def model_info(self) -> ModelInfo:
        args = self._server_args
        hf_config = getattr(self._engine.tokenizer_manager, "model_config", None)
        return ModelInfo(
            model_path=args.model_path,
            max_model_len=int(getattr(hf_config, "context_len", 0) or args.context_length or 0),
            vocab_size=int(getattr(hf_config, "vocab_size", 0) or 0),
        )

    async def health(self) -> bool:
        return self._engine is not None

    async def flush_cache(self) -> bool:
        result = await self._engine.tokenizer_manager.flush_cache()
        return bool(getattr(result, "success", True))

    async def shutdown(self) -> None:
        if self._engine is not None:
            await asyncio.to_thread(self._engine.shutdown)
            self._engine = None


class SGLangEnginePlugin(EnginePlugin):
    description = "SGLang's runtime (RadixAttention, continuous batching) on CUDA GPUs"

    def build(self, config: ServerConfig) -> Engine:
        if not config.model_path:
            raise ConfigError("the sglang engine needs --model-path (a checkpoint folder or id)")
        require_gpu()
        return SGLangEngine(config)
