"""The contract between the serving layer and an engine backend.

Requests use SGLang's own schema: the field names and meaning of
``sglang.Engine.async_generate`` (``input_ids`` / ``prompt``, ``sampling_params`` with
SGLang's keys, ``custom_logit_processor`` as the string ``CustomLogitProcessor.to_str()``
makes, with its per-request ``custom_params`` inside ``sampling_params``, media fields,
``rid``). The SGLang backend is then a thin pass-through and the CPU backend implements
the same semantics. Outputs are typed deltas, one per decoded step and sample index.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from omni_sglang.errors import EngineDeadError

logger = logging.getLogger(__name__)

#: SGLang's ``custom_params`` key for "the grammar starts after these reasoning-end
#: tokens" (``sglang.srt.sampling.sampling_params.REQUEST_REASONING_END_TOKEN_IDS_KEY``),
#: written out because importing SGLang costs seconds; a test checks they agree.
REASONING_END_KEY = "__sglang_reasoning_end_token_ids"


def processor_failed(processor: Any, exc: BaseException) -> str:
    """The error a request gets when its custom logits processor raised (both engines end
    that request only)."""
    return (
        f"the custom logits processor {type(processor).__name__} raised "
        f"{type(exc).__name__}: {exc}; this request was ended, the others go on"
    )


@dataclass
class EngineRequest:
    rid: str
    sampling_params: dict[str, Any] = field(default_factory=dict)
    input_ids: list[int] | None = None
    prompt: str | None = None
    custom_logit_processor: str | None = None
    image_data: list[Any] | None = None
    video_data: list[Any] | None = None
    audio_data: list[Any] | None = None
    return_logprob: bool = False
    logprob_start_len: int = -1
    top_logprobs_num: int = 0
    return_text_in_logprobs: bool = False
    #: SGLang's flag: the output starts inside the reasoning, so a grammar
    #: (``json_schema`` / ``regex`` / ``ebnf``) applies only after the reasoning-end tokens
    #: in ``custom_params[REASONING_END_KEY]``; without it the grammar starts at once.
    require_reasoning: bool = False
    stream: bool = True
    #: ``GenerateReqInput`` fields handed to SGLang unchanged (``/generate``'s
    #: ``PASSED_TO_SGLANG``), for engines with ``passes_sglang_fields``.
    sglang_fields: dict[str, Any] = field(default_factory=dict)
    #: Media already expanded by our modality processor (engines that do not expand
    #: media themselves): features and placeholder positions per item.
    mm_items: list[Any] | None = None


@dataclass
class FinishReason:
    """SGLang's ``meta_info.finish_reason``: type 'stop' | 'length' | 'abort'."""

    type: str
    matched: str | int | None = None
    message: str | None = None

    def to_sglang(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.matched is not None:
            out["matched"] = self.matched
        if self.message is not None:
            out["message"] = self.message
        return out


@dataclass
class EngineOutput:
    """What one step added to sample ``index`` of a request."""

    index: int
    text: str
    token_ids: list[int]
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason | None = None
    cached_tokens: int = 0
    #: Prompt tokens each modality's placeholders expanded to (``image`` / ``video`` /
    #: ``audio``), as SGLang's ``meta_info`` counts them from the items' offsets.
    media_tokens: dict[str, int] = field(default_factory=dict)
    #: SGLang's ``[logprob, token_id, text_or_None]`` entries, when asked for.
    output_token_logprobs: list[list[Any]] | None = None
    input_token_logprobs: list[list[Any]] | None = None
    input_top_logprobs: list[list[list[Any]]] | None = None
    output_top_logprobs: list[list[list[Any]]] | None = None

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None


@dataclass
class ModelInfo:
    model_path: str
    max_model_len: int
    vocab_size: int
    is_generation: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


class Engine(ABC):
    """An engine backend. ``start`` before use; ``shutdown`` at exit."""

    #: The tokenizer requests are built with (a transformers tokenizer).
    tokenizer: Any
    #: True when the engine runs the model's own media processor (SGLang): it then takes
    #: ``input_ids`` with one placeholder per item and the media in image_data /
    #: video_data / audio_data (``ModalityProcessor.unexpanded``). False: it takes our
    #: modality processor's expanded ``input_ids`` + ``mm_items``.
    expands_media: bool = False
    #: True when the engine runs SGLang and hands ``EngineRequest.sglang_fields`` to it.
    passes_sglang_fields: bool = False
    #: True when a request's ``sampling_seed`` makes its sampling reproducible.
    honours_seed: bool = True
    #: Why the engine can no longer serve (a process or thread of it died); None while
    #: it can. Set once, by ``report_failure``.
    failure: EngineDeadError | None = None
    #: The server's reaction to ``failure`` (refuse new work, exit); called once, on the
    #: event loop.
    on_failure: Callable[[EngineDeadError], None] | None = None

    def report_failure(self, reason: str) -> EngineDeadError:
        """Record that the engine died (on the event loop); every later call returns the
        first failure. The engine itself ends its in-flight requests with it."""
        if self.failure is None:
            self.failure = EngineDeadError(
                f"the engine stopped: {reason}; this server is restarting, retry shortly"
            )
            logger.error("engine failure: %s", reason)
            if self.on_failure is not None:
                self.on_failure(self.failure)
        return self.failure

    @abstractmethod
    async def start(self) -> None:
        """Load the model; returns when ``generate`` may be called."""

    @abstractmethod
    def generate(self, request: EngineRequest) -> AsyncIterator[EngineOutput]:
        """Stream outputs. Closing the iterator early aborts the request."""

    @abstractmethod
    async def abort(self, rid: str) -> None:
        """Stop a request and free its state; unknown ids are ignored."""

    @abstractmethod
    def model_info(self) -> ModelInfo: ...

    @abstractmethod
    async def health(self) -> bool:
        """True when the engine can serve a request now."""

    @abstractmethod
    async def shutdown(self) -> None: ...

    @property
    def num_running_requests(self) -> int:
        """Requests holding engine state now (admitted or queued); 0 if not tracked."""
        return 0

    async def flush_cache(self) -> bool:
        """Drop any prefix cache; engines without one have nothing to flush."""
        return True
