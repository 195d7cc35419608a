"""The ``sglang`` engine: SGLang's in-process ``sglang.Engine`` on GPUs.

The engine contract already is SGLang's request schema, so an ``EngineRequest`` becomes
SGLang's own ``GenerateReqInput`` field for field, and goes to the tokenizer manager the
way ``Engine.async_generate`` sends it (that method has no ``return_text_in_logprobs``,
and dropping a field silently is what this project refuses). SGLang's stream, cumulative
or incremental depending on its flags, becomes our typed deltas. Server arguments are
built in ``sglang_args``. SGLang is imported only inside functions: it costs 10-18 s and
about 1 GB per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omni_sglang.engines import sglang_hooks, sglang_startup
from omni_sglang.engines.base import Engine, EngineOutput, EngineRequest, ModelInfo
from omni_sglang.engines.request_checks import (
    check_sampling_keys,
    check_token_ids,
    load_logit_processor,
)
from omni_sglang.engines.sglang_args import build_server_args, server_args_argv
from omni_sglang.engines.sglang_stream import (
    IDS_AT_CHUNK,
    StreamDeltas,
    abort_status,
    failed_in_sglang,
    refusal,
)
from omni_sglang.errors import (
    ClientError,
    ConfigError,
    EngineDeadError,
    EngineError,
    InvalidRequestError,
)
from omni_sglang.plugin_api import EnginePlugin
from omni_sglang.sglang_source import sampling_params_keys

if TYPE_CHECKING:
    from omni_sglang.config import ServerConfig

logger = logging.getLogger(__name__)


__all__ = [
    "SGLangEngine",
    "SGLangEnginePlugin",
    "StreamDeltas",
    "build_server_args",
    "server_args_argv",
    "to_generate_req_input",
]


#: EngineRequest fields that do not go to SGLang, and why (a test keeps this complete,
#: so a field added to the contract cannot be dropped here unnoticed).
NOT_SENT_TO_SGLANG = {
    "mm_items": "SGLang's own multimodal processor expands image/video/audio_data",
    "stream": "SGLang always streams to us; the serving layer aggregates",
}


def to_generate_req_input(request: EngineRequest) -> Any:
    """The ``GenerateReqInput`` SGLang's tokenizer manager takes for this request.

    Always streamed: the serving layer aggregates non-streaming answers itself, and a
    stream is what lets a client disconnect abort the request mid-way."""
    from sglang.srt.managers.io_struct import GenerateReqInput

    sampling_params = dict(request.sampling_params)
    if request.custom_logit_processor and sampling_params.get("custom_params") is None:
        # SGLang hands a processor its request (``__req__``) only inside a custom_params
        # dict; the fault hook (sglang_hooks) needs it to end just that request.
        sampling_params["custom_params"] = {}
    return GenerateReqInput(
        text=request.prompt,
        input_ids=request.input_ids,
        sampling_params=sampling_params,
        image_data=request.image_data or None,
        video_data=request.video_data or None,
        audio_data=request.audio_data or None,
        custom_logit_processor=request.custom_logit_processor,
        return_logprob=request.return_logprob,
        logprob_start_len=request.logprob_start_len,
        top_logprobs_num=request.top_logprobs_num,
        return_text_in_logprobs=request.return_text_in_logprobs,
        require_reasoning=request.require_reasoning,
        stream=True,
        rid=request.rid,
        **request.sglang_fields,
    )


def _client_error(exc: ValueError) -> ClientError:
    """SGLang rejects bad input with ValueError (its HTTP server answers 400)."""
    return refusal(str(exc))


#: How often SGLang's child processes are checked: a dead one fails the in-flight
#: requests within this (``is_alive`` is a non-blocking ``waitpid``).
CHILD_POLL_SECONDS = 0.2

_END = object()
_ABORTED = object()


async def _pump(stream: AsyncIterator[dict[str, Any]], queue: asyncio.Queue[Any]) -> None:
    """Move SGLang's stream into ``queue``. Cancelling this task is how a request is
    aborted: SGLang's ``generate_request`` aborts every (sub-)request it dispatched when
    its generator is interrupted, including the n > 1 samples whose ids it made up."""
    try:
        async for chunk in stream:
            chunk[IDS_AT_CHUNK] = len(chunk.get("output_ids") or ())
            queue.put_nowait(chunk)
        queue.put_nowait(_END)
    except asyncio.CancelledError:
        queue.put_nowait(_ABORTED)
        raise
    except Exception as exc:
        queue.put_nowait(exc)


class SGLangEngine(Engine):
    #: SGLang's multimodal processor (our subclass of it) expands the placeholders.
    expands_media = True
    passes_sglang_fields = True

    def __init__(self, config: ServerConfig, device: str = "cuda"):
        self._config = config
        self._device = device
        self._server_args = build_server_args(config, device)
        if self._server_args.node_rank >= 1:
            # sglang.Engine on a worker node runs schedulers only and never returns a
            # tokenizer: an HTTP server there would never become ready.
            raise ConfigError(
                f"--node-rank {self._server_args.node_rank} only runs SGLang schedulers for "
                "node 0; start it with `sglang serve` and the sglang_argv that --dry-run "
                "prints (see docs/SCALING.md)"
            )
        # SGLang applies a request's seed only in its deterministic mode (batch-invariant
        # kernels; GPU attention backends only); otherwise every request draws from the
        # scheduler's own generator.
        self.honours_seed = bool(self._server_args.enable_deterministic_inference)
        self._engine: Any = None
        self._incremental = False
        self._pumps: dict[str, asyncio.Task[None]] = {}
        self._queues: dict[str, asyncio.Queue[Any]] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._vocab_size = 0
        self._model_info: ModelInfo | None = None
        self.tokenizer: Any = None

    def _launch(self) -> Any:
        started = time.monotonic()
        logger.info("sglang engine: importing SGLang (about 30 s on 2 CPU cores) ...")
        import sglang

        logger.info(
            "sglang engine: starting SGLang's scheduler and detokenizer on %s for %s "
            "(imports again in each process, then loads the model) ...",
            self._device,
            self._server_args.model_path,
        )
        engine = sglang.Engine(server_args=self._server_args)
        logger.info("sglang engine: SGLang ready in %.1f s", time.monotonic() - started)
        return engine

    async def start(self) -> None:
        # SGLang's processes inherit these: our hooks on, and where a failing scheduler
        # writes its cause (see sglang_hooks, sglang_startup).
        report = Path(tempfile.mkstemp(prefix="omni-sglang-startup-")[1])
        os.environ[sglang_hooks.ENABLE] = "1"
        os.environ[sglang_startup.REPORT] = str(report)
        if threading.current_thread() is threading.main_thread():
            # A scheduler failing to start SIGQUITs us; by default that kills us silently.
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGQUIT, logger.error, "an SGLang process failed to start (SIGQUIT)"
            )
        before = sglang_startup.child_pids()
        try:
            # In a thread: loading takes minutes and /v1/health/live must answer meanwhile.
            self._engine = await asyncio.to_thread(self._launch)
        except Exception as exc:
            sglang_startup.kill_new_children(before)
            raise sglang_startup.startup_error(exc, report) from exc
        finally:
            report.unlink(missing_ok=True)
        manager = self._engine.tokenizer_manager
        self.tokenizer = manager.tokenizer
        self._vocab_size = int(manager.model_config.vocab_size)
        self._incremental = bool(getattr(manager, "incremental_streaming_output", False))
        self._start_handle_loop(manager)
        self._watcher = asyncio.create_task(self._watch_children(manager))

    def _start_handle_loop(self, manager: Any) -> None:
        """Start SGLang's response loop on our event loop now, not on the first request.

        From the main thread it also installs SGLang's signal handlers, and both are
        replaced: SIGTERM goes back to uvicorn's graceful shutdown (drain, then
        ``shutdown``); SIGQUIT, which a failing scheduler or detokenizer sends us, would
        make SGLang SIGKILL this process and every connection with it, so it reports the
        failure instead, and the server answers what is in flight before it exits."""
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGTERM) if in_main else None
        manager.auto_create_handle_loop()
        if in_main:
            loop = asyncio.get_running_loop()
            loop.remove_signal_handler(signal.SIGTERM)
            # getsignal() is None for a handler not set from Python: the default then.
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
            loop.add_signal_handler(
                signal.SIGQUIT, self._fail, "an SGLang process reported a crash (SIGQUIT)"
            )

    async def _watch_children(self, manager: Any) -> None:
        """SGLang's scheduler and detokenizer processes, polled: one that exits while we
        serve fails the engine. (SGLang's own watchdog does this once a second with a
        SIGQUIT, which has no handler off the main thread: ours replaces it.)"""
        watchdog = manager._subprocess_watchdog
        if watchdog is None:
            return
        watchdog.stop()
        children = list(zip(watchdog._processes, watchdog._names, strict=True))
        while self.failure is None:
            for process, name in children:
                if not process.is_alive():
                    self._fail(
                        f"SGLang's {name} process (pid {process.pid}) exited with status "
                        f"{process.exitcode}"
                    )
                    return
            await asyncio.sleep(CHILD_POLL_SECONDS)

    def _fail(self, reason: str) -> None:
        """End every in-flight request with the failure; later ones get it at once."""
        failure = self.report_failure(reason)
        for queue in self._queues.values():
            queue.put_nowait(failure)

    def _require_engine(self) -> Any:
        if self._engine is None:
            raise EngineError("the sglang engine is not started")
        return self._engine

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineOutput]:
        engine = self._require_engine()
        if self.failure is not None:
            raise self.failure
        if request.rid in self._pumps:
            raise InvalidRequestError(f"request id {request.rid!r} is already running")
        check_token_ids(request, self._vocab_size)
        check_sampling_keys(request.sampling_params, sampling_params_keys())
        await load_logit_processor(request.custom_logit_processor)
        try:
            obj = to_generate_req_input(request)
        except ValueError as exc:
            raise _client_error(exc) from exc
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stream = engine.tokenizer_manager.generate_request(obj, None)
        pump = asyncio.create_task(_pump(stream, queue))
        self._pumps[request.rid] = pump
        self._queues[request.rid] = queue
        deltas = StreamDeltas(self._incremental)
        samples = int(request.sampling_params.get("n", 1) or 1)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if item is _ABORTED:
                    for output in deltas.aborted(samples):
                        yield output
                    return
                if isinstance(item, EngineDeadError):
                    raise item
                if isinstance(item, ValueError):
                    raise _client_error(item) from item
                if isinstance(item, Exception):
                    raise EngineError(f"SGLang failed on request {request.rid}: {item}") from item
                output = deltas(item)
                failed = failed_in_sglang(output.finish_reason, abort_status(item["meta_info"]))
                if failed is not None:
                    raise failed
                yield output
        finally:
            self._pumps.pop(request.rid, None)
            self._queues.pop(request.rid, None)
            if not pump.done():  # the consumer left early: abort in SGLang too
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump

    async def abort(self, rid: str) -> None:
        pump = self._pumps.get(rid)
        if pump is not None:
            pump.cancel()

    def model_info(self) -> ModelInfo:
        # Built once: routes ask per request, and it reads the checkpoint's config.json.
        if self._model_info is None:
            self._model_info = self._read_model_info()
        return self._model_info

    def _read_model_info(self) -> ModelInfo:
        args = self._server_args
        model_config = getattr(self._require_engine().tokenizer_manager, "model_config", None)
        hf_config = getattr(model_config, "hf_config", None)
        # The checkpoint's config, as the CPU engine gives it: the modality plugin reads its
        # media settings (vision / sound configs, placeholder tokens) from it. The file's
        # own keys win: SGLang's Nemotron Omni config class leaves vision_config and
        # force_image_size out of its to_dict() (measured: the plugin then planned a 64x48
        # image as 13k tokens where SGLang's processor made 12).
        config = {**(hf_config.to_dict() if hf_config is not None else {}), **_config_file(args)}
        extra: dict[str, Any] = {"config": config} if config else {}
        if hf_config is not None:
            extra["architectures"] = list(getattr(hf_config, "architectures", None) or [])
        return ModelInfo(
            model_path=args.model_path,
            max_model_len=int(getattr(model_config, "context_len", 0) or args.context_length or 0),
            vocab_size=int(getattr(model_config, "vocab_size", 0) or 0),
            extra=extra,
        )

    async def health(self) -> bool:
        """Started and not shutting down. (SGLang's own ``is_healthy`` stays False in
        an in-process Engine: only its HTTP server's health probe flips it to Up.)"""
        if self._engine is None or self.failure is not None:
            return False
        return not self._engine.tokenizer_manager.gracefully_exit

    @property
    def num_running_requests(self) -> int:
        if self._engine is None:
            return 0
        return len(self._engine.tokenizer_manager.rid_to_state)

    async def flush_cache(self) -> bool:
        result = await self._require_engine().tokenizer_manager.flush_cache()
        return bool(getattr(result, "success", True))

    async def shutdown(self) -> None:
        if self._engine is None:
            return
        for pump in list(self._pumps.values()):
            pump.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
        engine, self._engine = self._engine, None
        # SGLang's loop tasks live on our event loop; end them before it closes, so they
        # do not outlive the scheduler they read from.
        for task in list(getattr(engine.tokenizer_manager, "asyncio_tasks", ())):
            task.cancel()
        # Engine.shutdown stops the scheduler and waits for it to free the GPU.
        await asyncio.to_thread(engine.shutdown)
        close_ipc(engine.tokenizer_manager)


def close_ipc(manager: Any) -> None:
    """Close the zmq channels SGLang's tokenizer manager leaves open at shutdown.

    They keep zmq's default linger (forever): a message queued for the scheduler that is
    gone (an abort sent as a stream closed) then blocks the context's termination, which
    runs when it is garbage-collected or at exit: the process never exits (measured: a
    test session hung after its last test until CI's limit)."""
    import zmq

    contexts = set()
    for value in vars(manager).values():
        if isinstance(value, zmq.Socket):
            contexts.add(value.context)
            value.close(linger=0)
    for context in contexts:
        context.destroy(linger=0)  # its other sockets too


class SGLangEnginePlugin(EnginePlugin):
    description = (
        "SGLang's runtime (RadixAttention, continuous batching) on CUDA GPUs, or on the CPU "
        "through an SGLang platform plugin (omni-sglang-cpu)"
    )

    def build(self, config: ServerConfig) -> Engine:
        from omni_sglang.engines.sglang_platform import sglang_device

        return SGLangEngine(config, sglang_device())


def _config_file(args: Any) -> dict[str, Any]:
    """The checkpoint folder's config.json, if the model path is a folder."""
    path = Path(str(args.model_path)) / "config.json"
    if not path.is_file():
        return {}
    loaded = json.loads(path.read_text())
    return loaded if isinstance(loaded, dict) else {}
