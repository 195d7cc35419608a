"""The CPU engine: Hugging Face causal LMs on the CPU with SGLang's request semantics.

One worker thread owns the model. Each step it admits new requests (prefill), then
advances every running sequence by one token, round-robin, so concurrent streams
interleave. The event loop only validates, enqueues and relays outputs; torch runs in
the worker, so HTTP stays responsive while the model computes. Each sequence keeps its
own KV/state cache (``DynamicCache`` holds attention KV and Mamba states alike) and
frees it the moment it finishes or is aborted.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import torch

from omni_sglang.engines.base import (
    Engine,
    EngineOutput,
    EngineRequest,
    FinishReason,
    ModelInfo,
    processor_failed,
)
from omni_sglang.engines.cpu.batching import batched_decode
from omni_sglang.engines.cpu.grammar import REASONING_END_KEY, GrammarCompiler
from omni_sglang.engines.cpu.logprobs import prompt_logprobs, top_entries
from omni_sglang.engines.cpu.multimodal import prefill_embeddings
from omni_sglang.engines.cpu.sampling import SamplingConfig
from omni_sglang.engines.cpu.sequence import RequestState, Sequence
from omni_sglang.engines.request_checks import check_token_ids, load_logit_processor
from omni_sglang.errors import ContextLengthExceededError, EngineError, InvalidRequestError

logger = logging.getLogger(__name__)


class CpuEngine(Engine):
    def __init__(
        self,
        model_path: str | Path,
        *,
        max_model_len: int | None = None,
        threads: int | None = None,
        max_running_requests: int = 64,
        max_batch: int = 32,
    ):
        self._model_path = str(model_path)
        self._max_model_len_override = max_model_len
        self._threads = threads
        self._max_running = max_running_requests
        self._max_batch = max_batch
        self._model: Any = None
        self.tokenizer: Any = None
        self._info: ModelInfo | None = None
        self._eos_ids: set[int] = set()
        self._inbox: collections.deque[RequestState] = collections.deque()
        self._wakeup = threading.Condition()
        self._running: list[Sequence] = []
        self._requests: dict[str, RequestState] = {}
        self._stopping = False
        self._worker: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._grammars: GrammarCompiler | None = None
        self._encoders: Any = None

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._load)
        self._worker = threading.Thread(target=self._run, name="cpu-engine", daemon=True)
        self._worker.start()

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        if self._threads:
            torch.set_num_threads(self._threads)
        self.tokenizer = AutoTokenizer.from_pretrained(self._model_path)
        self._model = AutoModelForCausalLM.from_pretrained(
            self._model_path, dtype=torch.float32
        ).eval()
        config = self._model.config
        eos: set[int] = set()
        for source in (config.eos_token_id, self.tokenizer.eos_token_id):
            if isinstance(source, int):
                eos.add(source)
            elif isinstance(source, list):
                eos.update(source)
        try:
            gen_eos = GenerationConfig.from_pretrained(self._model_path).eos_token_id
            eos.update([gen_eos] if isinstance(gen_eos, int) else gen_eos or [])
        except OSError:
            pass  # no generation_config.json: the model config's EOS is enough
        self._eos_ids = eos
        max_len: int = (
            self._max_model_len_override or getattr(config, "max_position_embeddings", None) or 4096
        )
        self._info = ModelInfo(
            model_path=self._model_path,
            max_model_len=int(max_len),
            vocab_size=int(config.vocab_size),
            extra={
                "architectures": list(getattr(config, "architectures", None) or []),
                "config": config.to_dict(),
            },
        )
        from omni_sglang.tiny.encoders import load_encoders

        self._encoders = load_encoders(self._model_path)

    async def shutdown(self) -> None:
        self._stopping = True
        with self._wakeup:
            self._wakeup.notify_all()
        if self._worker is not None:
            await asyncio.to_thread(self._worker.join, 10)

    def model_info(self) -> ModelInfo:
        if self._info is None:
            raise EngineError("the engine is not started")
        return self._info

    async def health(self) -> bool:
        return (
            self._info is not None
            and self._worker is not None
            and self._worker.is_alive()
            and self.failure is None
        )

    @property
    def num_running_requests(self) -> int:
        return len(self._requests)

    # -- requests ------------------------------------------------------------------------

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineOutput]:
        state = await self._prepare(request)
        remaining = state.config.n
        with self._wakeup:
            self._requests[state.rid] = state
            self._inbox.append(state)
            self._wakeup.notify()
        try:
            while remaining:
                item = await state.queue.get()
                if isinstance(item, BaseException):
                    raise item
                if item.finished:
                    remaining -= 1
                yield item
        finally:
            if remaining:  # the consumer went away (client disconnect) or failed
                state.aborted.set()
                with self._wakeup:
                    self._wakeup.notify()

    async def _prepare(self, request: EngineRequest) -> RequestState:
        info = self.model_info()
        if self.failure is not None:
            raise self.failure
        if self._worker is None or not self._worker.is_alive():
            raise EngineError("the CPU engine is not running")
        config = SamplingConfig.from_sglang(request.sampling_params)
        if request.image_data or request.video_data or request.audio_data:
            raise InvalidRequestError(
                "the CPU engine takes media pre-processed (mm_items), not raw media data"
            )
        if request.mm_items and not self._encoders:
            raise InvalidRequestError("this model has no media encoders; it takes text only")
        if request.input_ids is not None:
            prompt_ids = list(request.input_ids)
        elif request.prompt is not None:
            prompt_ids = self.tokenizer(request.prompt, add_special_tokens=False).input_ids
        else:
            raise InvalidRequestError("a request needs 'prompt' or 'input_ids'")
        if not prompt_ids:
            raise InvalidRequestError("the prompt is empty")
        # The model's vocabulary, not the tokenizer's: the sampler draws from every row of
        # the embedding (a padded vocabulary has ids no token names), as SGLang's does.
        check_token_ids(request, info.vocab_size)
        if len(prompt_ids) >= info.max_model_len:
            raise ContextLengthExceededError(
                f"the prompt has {len(prompt_ids)} tokens; this model's context is "
                f"{info.max_model_len} tokens"
            )
        room = info.max_model_len - len(prompt_ids)
        if config.max_new_tokens is not None and config.max_new_tokens > room:
            raise ContextLengthExceededError(
                f"max_new_tokens is {config.max_new_tokens}, but the context has room for "
                f"{room} tokens after the {len(prompt_ids)}-token prompt",
                "max_new_tokens",
            )
        processor = await load_logit_processor(request.custom_logit_processor)
        return RequestState(
            rid=request.rid,
            config=config,
            prompt_ids=prompt_ids,
            loop=asyncio.get_running_loop(),
            queue=asyncio.Queue(),
            processor=processor,
            return_logprob=request.return_logprob,
            top_logprobs_num=max(0, request.top_logprobs_num or 0),
            logprob_start_len=-1
            if request.logprob_start_len is None
            else request.logprob_start_len,
            return_text_in_logprobs=request.return_text_in_logprobs,
            make_grammar=await self._grammar_factory(config, request.require_reasoning),
            mm_items=list(request.mm_items or []),
        )

    async def _grammar_factory(self, config: SamplingConfig, require_reasoning: bool) -> Any:
        """The grammar's matcher maker; with ``require_reasoning`` (SGLang's semantics) it
        waits for the reasoning-end ids in ``custom_params``, else it applies at once."""
        if config.grammar is None:
            return None
        if self._grammars is None:
            info = self.model_info()
            self._grammars = await asyncio.to_thread(
                GrammarCompiler, self.tokenizer, info.vocab_size, sorted(self._eos_ids)
            )
        compiler = self._grammars
        compiled = await asyncio.to_thread(compiler.compile, config.grammar)
        gate = (config.custom_params or {}).get(REASONING_END_KEY) if require_reasoning else None
        if require_reasoning and not (
            isinstance(gate, list) and gate and all(isinstance(t, int) for t in gate)
        ):
            raise InvalidRequestError(
                f"require_reasoning needs custom_params.{REASONING_END_KEY}: the token ids "
                "that end the reasoning"
            )
        return lambda: compiler.matcher(compiled, gate)

    async def abort(self, rid: str) -> None:
        state = self._requests.get(rid)
        if state is not None:
            state.aborted.set()
            with self._wakeup:
                self._wakeup.notify()

    # -- the worker thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            torch.set_grad_enabled(False)
            while not self._stopping:
                self._admit()
                if not self._running:
                    with self._wakeup:
                        if not self._inbox and not self._stopping:
                            self._wakeup.wait(timeout=0.5)
                    continue
                self._step()
        except BaseException as exc:  # the worker died: the engine cannot serve again
            logger.exception("CPU engine worker crashed")
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(self._fail, f"its worker thread raised {exc!r}")

    def _fail(self, reason: str) -> None:
        """On the event loop: record the failure and end every waiting request with it."""
        failure = self.report_failure(reason)
        for state in list(self._requests.values()):
            state.queue.put_nowait(failure)

    def _admit(self) -> None:
        with self._wakeup:
            while self._inbox and len(self._running) < self._max_running:
                state = self._inbox.popleft()
                if state.aborted.is_set():
                    self._requests.pop(state.rid, None)
                    continue
                info = self.model_info()
                for index in range(state.config.n):
                    self._running.append(
                        Sequence(
                            state,
                            index,
                            self.tokenizer,
                            info.vocab_size,
                            self._eos_ids,
                            info.max_model_len,
                        )
                    )

    def _step(self) -> None:
        """Prefill newcomers one by one, then advance all others in batched decodes."""
        decoding: list[Sequence] = []
        for seq in list(self._running):
            state = seq.request
            if state.aborted.is_set():
                self._finish(seq, FinishReason("abort", message="aborted"), deliver=True)
            elif state.config.max_new_tokens == 0:
                if self._wants_prompt_logprobs(seq):  # prefill only: sgl.select, caching
                    self._guarded([seq], self._prefill, sample=False)
                self._finish(seq, FinishReason("length"), deliver=True)
            elif seq.cache is None:
                self._guarded([seq], self._prefill)
            else:
                decoding.append(seq)
        for start in range(0, len(decoding), self._max_batch):
            self._guarded(decoding[start : start + self._max_batch], self._decode)

    def _guarded(self, seqs: list[Sequence], work: Any, sample: bool = True) -> None:
        """Run a forward for ``seqs``; a failure fails those requests, not the engine."""
        try:
            logits = work(seqs)
        except Exception as exc:
            logger.exception("forward failed for %s", [s.request.rid for s in seqs])
            for seq in seqs:
                seq.request.deliver(EngineError(f"generation failed: {type(exc).__name__}"))
                seq.request.aborted.set()
                self._finish(seq, None, deliver=False)
            return
        if sample:
            for row, seq in enumerate(seqs):
                self._emit(seq, logits[row])

    def _prefill(self, seqs: list[Sequence]) -> torch.Tensor:
        from transformers import DynamicCache

        (seq,) = seqs
        seq.cache = DynamicCache(config=self._model.config)
        wants = self._wants_prompt_logprobs(seq)
        inputs: dict[str, Any]
        if seq.request.mm_items:  # media: encoder outputs at the placeholder positions
            embeds = prefill_embeddings(
                self._model, seq.origin_input_ids, seq.request.mm_items, self._encoders
            )
            inputs = {"inputs_embeds": embeds}
        else:
            inputs = {"input_ids": torch.tensor([seq.origin_input_ids], dtype=torch.long)}
        out = self._model(
            **inputs, past_key_values=seq.cache, use_cache=True, logits_to_keep=0 if wants else 1
        )
        if wants:
            state = seq.request
            seq.input_logprobs = prompt_logprobs(
                self._mask_padding(out.logits[0]),
                seq.origin_input_ids,
                state.logprob_start_len,
                state.top_logprobs_num,
                self._decode_one if state.return_text_in_logprobs else None,
            )
        return out.logits[:, -1].float()

    @staticmethod
    def _wants_prompt_logprobs(seq: Sequence) -> bool:
        state = seq.request
        return state.return_logprob and 0 <= state.logprob_start_len < len(seq.origin_input_ids)

    def _decode_one(self, token: int) -> str:
        return str(self.tokenizer.decode([token]))

    def _mask_padding(self, logits: torch.Tensor) -> torch.Tensor:
        # Rows past the tokenizer are padding of the embedding matrix, not tokens.
        logits = logits.float().clone()
        logits[..., len(self.tokenizer) :] = float("-inf")
        return logits

    def _decode(self, seqs: list[Sequence]) -> torch.Tensor:
        return batched_decode(
            self._model,
            [s.cache for s in seqs],
            [s.output_ids[-1] for s in seqs],
            [len(s.origin_input_ids) + len(s.output_ids) - 1 for s in seqs],
        )

    def _emit(self, seq: Sequence, logits: torch.Tensor) -> None:
        state = seq.request
        try:
            token, logprobs, tops = self._sample(seq, logits)
            out = seq.accept(token, logprobs, tops)
        except Exception as exc:
            logger.exception("sampling failed for %s", state.rid)
            failed = exc if isinstance(exc, EngineError) else None
            state.deliver(failed or EngineError(f"sampling failed: {type(exc).__name__}"))
            state.aborted.set()
            self._finish(seq, None, deliver=False)
            return
        if out.finished:  # free first, so a client that sees the end sees the state gone
            self._finish(seq, None, deliver=False)
        state.deliver(out)

    def _sample(self, seq: Sequence, logits: torch.Tensor) -> tuple[int, Any, Any]:
        logits = self._mask_padding(logits)
        state = seq.request
        seq.sampler.bias_logits(logits, len(seq.output_ids), seq.stop_ids)
        if seq.grammar is not None:
            seq.grammar.mask(logits)
        processor = seq.request.processor
        if processor is not None:
            try:
                logits = processor(logits.unsqueeze(0), [seq.custom_params])[0]
            except Exception as exc:
                raise EngineError(processor_failed(processor, exc)) from exc
        token = seq.sampler.draw(logits)
        if not state.return_logprob:
            return token, None, None
        raw = seq.sampler.logprobs(logits)
        decode = self._decode_one if state.return_text_in_logprobs else None
        entry = [float(raw[token]), token, decode(token) if decode else None]
        tops = (
            [top_entries(raw, state.top_logprobs_num, decode)] if state.top_logprobs_num else None
        )
        return token, [entry], tops

    def _finish(self, seq: Sequence, reason: FinishReason | None, *, deliver: bool) -> None:
        seq.cache = None  # free the KV/state memory now, not at garbage collection
        if seq in self._running:
            self._running.remove(seq)
        state = seq.request
        if not any(s.request is state for s in self._running):
            with self._wakeup:
                self._requests.pop(state.rid, None)
        if deliver and reason is not None and not seq.finished:
            seq.finished = True
            state.deliver(seq.output("", [], reason))
