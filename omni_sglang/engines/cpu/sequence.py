"""One sample of one request inside the CPU engine's worker, and its finishing rules."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from omni_sglang.engines.base import EngineOutput, FinishReason
from omni_sglang.engines.cpu.grammar import SequenceGrammar
from omni_sglang.engines.cpu.sampling import SamplingConfig, SequenceSampler
from omni_sglang.engines.cpu.text import IncrementalDetokenizer, StopStringMatcher


@dataclass
class RequestState:
    """Shared by the ``n`` sequences of a request; crosses the thread boundary."""

    rid: str
    config: SamplingConfig
    prompt_ids: list[int]
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[EngineOutput | BaseException]
    processor: Any = None  # a CustomLogitProcessor instance, or None
    #: Makes each sequence's grammar matcher (None: unconstrained).
    make_grammar: Callable[[], SequenceGrammar] | None = None
    return_logprob: bool = False
    top_logprobs_num: int = 0
    logprob_start_len: int = -1
    return_text_in_logprobs: bool = False
    #: Pre-processed media (features + placeholder positions), used at prefill.
    mm_items: list[Any] = field(default_factory=list)
    aborted: threading.Event = field(default_factory=threading.Event)

    def media_tokens(self) -> dict[str, int]:
        """Prompt tokens by modality: the placeholder positions each item fills."""
        counts: dict[str, int] = {}
        for item in self.mm_items:
            positions = item.options.get("positions") or []
            counts[item.modality] = counts.get(item.modality, 0) + len(positions)
        return counts

    def deliver(self, item: EngineOutput | BaseException) -> None:
        # The loop may be closed when a client vanished during shutdown; drop then.
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


class Sequence:
    """Exposes ``origin_input_ids`` / ``output_ids`` like SGLang's ``Req``, because custom
    logits processors receive it as ``custom_params["__req__"]``."""

    def __init__(
        self,
        request: RequestState,
        index: int,
        tokenizer: Any,
        vocab_size: int,
        eos_ids: set[int],
        max_model_len: int,
    ):
        cfg = request.config
        self.request = request
        self.index = index
        self.origin_input_ids = request.prompt_ids
        self._media_tokens = request.media_tokens()
        self.output_ids: list[int] = []
        self.cache: Any = None
        self.sampler = SequenceSampler(cfg, vocab_size, index)
        self._detok = IncrementalDetokenizer(tokenizer, cfg.skip_special_tokens)
        self._stops = StopStringMatcher(cfg.stop, keep_stop=cfg.no_stop_trim)
        self._stop_ids = set(cfg.stop_token_ids) | (set() if cfg.ignore_eos else eos_ids)
        self._max_len = max_model_len
        self.finished = False
        # One dict for the sequence's lifetime, as SGLang keeps ``custom_params`` per
        # request: processors may keep their per-request state in it.
        self.custom_params: dict[str, Any] = dict(cfg.custom_params or {})
        self.custom_params["__req__"] = self
        self.grammar = request.make_grammar() if request.make_grammar else None
        #: Prompt logprobs computed at prefill, sent with this sequence's first output.
        self.input_logprobs: tuple[list[Any], list[Any]] | None = None

    @property
    def stop_ids(self) -> set[int]:
        return self._stop_ids

    def accept(
        self,
        token_id: int,
        logprobs: list[list[Any]] | None = None,
        top_logprobs: list[list[list[Any]]] | None = None,
    ) -> EngineOutput:
        """Record a drawn token; return what this step adds to the stream."""
        cfg = self.request.config
        self.output_ids.append(token_id)
        self.sampler.observe(token_id)
        if self.grammar is not None:
            self.grammar.accept(token_id)
        finish: FinishReason | None = None
        text = ""
        if token_id in self._stop_ids or (self.grammar is not None and self.grammar.terminated):
            # SGLang does not put the matched stop token's text in the output.
            finish = FinishReason("stop", matched=token_id)
        else:
            text, matched = self._stops.push(self._detok.push(token_id))
            if matched is not None:
                finish = FinishReason("stop", matched=matched)
        if finish is None and (
            (cfg.max_new_tokens is not None and len(self.output_ids) >= cfg.max_new_tokens)
            or len(self.origin_input_ids) + len(self.output_ids) >= self._max_len
        ):
            finish = FinishReason("length", matched=None)
        if finish is not None:
            self.finished = True
            if not isinstance(finish.matched, str):
                # Ending on length or a stop token: release text held back for a
                # possible stop string or an incomplete UTF-8 sequence.
                tail, matched = self._stops.push(self._detok.flush())
                text += tail + ("" if matched else self._stops.flush())
        out = self.output(text, [token_id], finish, logprobs)
        out.output_top_logprobs = top_logprobs
        return out

    def output(
        self,
        text: str,
        token_ids: list[int],
        finish: FinishReason | None,
        logprobs: list[list[Any]] | None = None,
    ) -> EngineOutput:
        out = EngineOutput(
            index=self.index,
            text=text,
            token_ids=token_ids,
            prompt_tokens=len(self.origin_input_ids),
            completion_tokens=len(self.output_ids),
            finish_reason=finish,
            output_token_logprobs=logprobs,
            media_tokens=self._media_tokens,
        )
        if self.input_logprobs is not None:
            out.input_token_logprobs, out.input_top_logprobs = self.input_logprobs
            self.input_logprobs = None
        return out
