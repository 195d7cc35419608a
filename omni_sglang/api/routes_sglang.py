"""SGLang's native HTTP API, so SGLang frontend-language programs run against us:
``/generate``, ``/get_model_info`` (+ ``/model_info``), ``/server_info``,
``/flush_cache``, ``/health``, ``/health_generate`` with SGLang's response shapes, and the
``/concate_and_append_request`` its frontend still calls.
Media in ``/generate`` (``image_data`` / ``video_data`` / ``audio_data``): ``generate_media``."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from omni_sglang import __version__
from omni_sglang.admission import Ticket
from omni_sglang.api.generate_media import attach_generate_media
from omni_sglang.api.io import json_response, read_json, sse_response, unless_disconnected
from omni_sglang.api.openapi import body_schema
from omni_sglang.api.routes_openai import (
    admitted,
    open_streams,
    server_state,
    warning_headers,
)
from omni_sglang.engines.base import EngineOutput, EngineRequest
from omni_sglang.errors import InvalidRequestError, ServiceUnavailableError
from omni_sglang.protocol.sglang import ConcateAndAppendRequest, GenerateRequest
from omni_sglang.state import ServerState

router = APIRouter()
health_router = APIRouter()


def _engine_requests(req: GenerateRequest, state: ServerState) -> list[EngineRequest]:
    """The requests without their media (``generate_media`` adds it): cheap checks first."""
    if req.custom_logit_processor is not None and not state.config.enable_custom_logit_processor:
        raise InvalidRequestError(
            "custom_logit_processor is disabled on this server (it runs client code); "
            "the operator can allow it with --enable-custom-logit-processor",
            "custom_logit_processor",
        )
    if req.sglang_fields and not state.engine.passes_sglang_fields:
        name = sorted(req.sglang_fields)[0]
        raise InvalidRequestError(
            f"'{name}' is passed to SGLang's runtime, which this server's engine is not "
            "(--engine sglang runs it); leave it unset here",
            name,
        )
    base = uuid.uuid4().hex
    out = []
    try:
        for i in range(req.batch_size):
            if req.text is not None:
                text = req.text[i] if isinstance(req.text, list) else req.text
                prompt, ids = text, None
            else:
                raw = req.input_ids
                ids = list(raw[i] if req.is_batch else raw)  # type: ignore[index,arg-type]
                prompt = None
            rid = req.item("rid", i, None) or f"{base}-{i}"
            out.append(
                EngineRequest(
                    rid=str(rid),
                    prompt=prompt,
                    input_ids=ids,
                    sampling_params=dict(req.item("sampling_params", i, {})),
                    return_logprob=bool(req.item("return_logprob", i, False)),
                    logprob_start_len=int(req.item("logprob_start_len", i, -1)),
                    top_logprobs_num=int(req.item("top_logprobs_num", i, 0)),
                    return_text_in_logprobs=req.return_text_in_logprobs,
                    custom_logit_processor=req.item("custom_logit_processor", i, None),
                    stream=req.stream,
                    sglang_fields=_item_fields(req, i),
                )
            )
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
    for r in out:
        n = r.sampling_params.get("n", 1)
        if isinstance(n, int) and not isinstance(n, bool) and n > state.config.max_n:
            raise InvalidRequestError(
                f"sampling_params.n is {n}; this server allows at most {state.config.max_n}", "n"
            )
    if len(out) > 256:
        raise InvalidRequestError(f"a batch of {len(out)}; at most 256 prompts per request")
    return out


def _item_fields(req: GenerateRequest, index: int) -> dict[str, Any]:
    """The SGLang fields of one batch item: a list with one entry per prompt is indexed,
    as SGLang does for a batch; anything else applies to every prompt."""
    if not req.is_batch:
        return dict(req.sglang_fields)
    return {
        name: value[index] if isinstance(value, list) and len(value) == req.batch_size else value
        for name, value in req.sglang_fields.items()
    }


class _Result:
    """One (prompt, sample) output in SGLang's shape: cumulative text and meta_info.

    Streamed chunks (``chunk``) carry the cumulative ``text`` and ``output_ids`` of SGLang's
    default streaming, but only the output logprob entries new since the last chunk, as
    SGLang slices them with ``--incremental-streaming-output`` and as its frontend reads
    them (``RuntimeEndpoint.generate_stream`` takes ``text[pos:]``; the interpreter's
    ``_merge_stream_meta_info`` joins the logprobs of chunks that added no text).
    ``output_token_logprobs_length`` is the running total, as in SGLang."""

    def __init__(self, rid: str, started: float):
        self.rid, self.started = rid, started
        self.text = ""
        self.output_ids: list[int] = []
        self.meta: dict[str, Any] = {"id": rid, "finish_reason": None}
        self.out_logprobs: list[Any] = []
        self.out_top: list[Any] = []
        self.want_logprobs = False
        self._sent_logprobs = self._sent_top = 0  # entries earlier chunks carried

    def add(self, out: EngineOutput) -> None:
        self.text += out.text
        self.output_ids += out.token_ids
        self.meta.update(
            prompt_tokens=out.prompt_tokens,
            completion_tokens=out.completion_tokens,
            cached_tokens=out.cached_tokens,
        )
        # As SGLang's meta_info: a modality's count only when the prompt has it.
        self.meta.update({f"{kind}_tokens": n for kind, n in out.media_tokens.items() if n})
        if out.input_token_logprobs is not None:
            self.meta["input_token_logprobs"] = out.input_token_logprobs
            self.meta["input_top_logprobs"] = out.input_top_logprobs or []
        if out.output_token_logprobs is not None:
            self.out_logprobs += out.output_token_logprobs
        if out.output_top_logprobs is not None:
            self.out_top += out.output_top_logprobs
        if out.finish_reason is not None:
            self.meta["finish_reason"] = out.finish_reason.to_sglang()
            self.meta["e2e_latency"] = time.monotonic() - self.started

    def body(self, index: int, logprobs_from: int = 0, top_from: int = 0) -> dict[str, Any]:
        meta = dict(self.meta)
        if self.want_logprobs:
            meta.setdefault("input_token_logprobs", [])
            meta.setdefault("input_top_logprobs", [])
            meta["output_token_logprobs"] = self.out_logprobs[logprobs_from:]
            meta["output_top_logprobs"] = self.out_top[top_from:]
            meta["output_token_logprobs_length"] = len(self.out_logprobs)
        return {"text": self.text, "output_ids": self.output_ids, "meta_info": meta, "index": index}

    def chunk(self, index: int) -> dict[str, Any]:
        """A streamed chunk: the output logprobs since the previous one."""
        body = self.body(index, self._sent_logprobs, self._sent_top)
        self._sent_logprobs, self._sent_top = len(self.out_logprobs), len(self.out_top)
        return body


def _slots(requests: list[EngineRequest]) -> list[int]:
    """First flat index of each prompt: its ``n`` samples follow it (SGLang's order)."""
    starts, total = [], 0
    for r in requests:
        starts.append(total)
        total += int(r.sampling_params.get("n", 1) or 1)
    return starts


async def _collect(
    requests: list[EngineRequest], streams: AsyncIterator[tuple[int, EngineOutput]]
) -> list[_Result]:
    started = time.monotonic()
    starts = _slots(requests)
    results: dict[int, _Result] = {}
    async for pos, out in streams:
        flat = starts[pos] + out.index
        if flat not in results:
            results[flat] = _Result(requests[pos].rid, started)
            results[flat].want_logprobs = requests[pos].return_logprob
        results[flat].add(out)
    return [results[i] for i in sorted(results)]


@router.post("/generate", openapi_extra=body_schema(GenerateRequest))
async def generate(request: Request) -> Response:
    return await admitted(request, _generate)


async def _generate(request: Request, state: ServerState, ticket: Ticket) -> Response:
    req = await read_json(request, GenerateRequest, state.config.max_request_bytes)
    requests = _engine_requests(req, state)
    warnings = await attach_generate_media(req, state, requests)
    outputs = await open_streams(state, requests, ticket)
    response: Response
    if req.stream:
        response = sse_response(_stream_events(requests, outputs))
    else:
        results = await unless_disconnected(request, _collect(requests, outputs))
        ticket.release()
        bodies = [r.body(i) for i, r in enumerate(results)]
        response = json_response(bodies if req.is_batch or len(bodies) > 1 else bodies[0])  # type: ignore[arg-type]
    response.headers.update(warning_headers(warnings))
    return response


async def _stream_events(
    requests: list[EngineRequest], streams: AsyncIterator[tuple[int, EngineOutput]]
) -> AsyncIterator[dict[str, Any]]:
    started = time.monotonic()
    starts = _slots(requests)
    results: dict[int, _Result] = {}
    async for pos, out in streams:
        flat = starts[pos] + out.index
        result = results.setdefault(flat, _Result(requests[pos].rid, started))
        result.want_logprobs = requests[pos].return_logprob
        result.add(out)
        yield result.chunk(flat)


@router.post("/concate_and_append_request", openapi_extra=body_schema(ConcateAndAppendRequest))
async def concate_and_append(request: Request) -> Response:
    """Accepted, nothing to do. SGLang's server has no such route (its frontend still posts
    here, and a failure leaves the program waiting forever): the frontend has already
    appended the forks' text to the parent's, which its next ``/generate`` sends whole, so
    this is the join by text (``_execute_concatenate_and_append_text``), not by KV cache."""
    state = server_state(request)
    await read_json(request, ConcateAndAppendRequest, state.config.max_request_bytes)
    return json_response({"success": True})


def _model_info(state: ServerState) -> dict[str, Any]:
    info = state.model_info
    modalities = state.plugins.modality.__class__.__name__ if state.plugins.modality else None
    return {
        "model_path": info.model_path,
        "tokenizer_path": info.model_path,
        "is_generation": info.is_generation,
        "preferred_sampling_params": None,
        "weight_version": "default",
        "served_model_names": state.model_names,
        "max_model_len": info.max_model_len,
        "has_image_understanding": modalities is not None,
        "has_audio_understanding": modalities is not None,
        "architectures": info.extra.get("architectures", []),
    }


@router.get("/get_model_info")
@router.get("/model_info")
async def model_info(request: Request) -> Response:
    return json_response(_model_info(server_state(request)))


@router.get("/server_info")
async def server_info(request: Request) -> Response:
    """Our configuration (no secrets) and the engine's live counters."""
    state: ServerState = request.app.state.omni
    config = state.config.model_dump(exclude={"api_key"})
    return json_response(
        {
            **config,
            "version": __version__,
            "ready": state.ready,
            "num_running_requests": state.engine.num_running_requests,
            "media_cache": state.media_loader.cache.stats() if state.media_loader else None,
        }
    )


@router.post("/flush_cache")
@router.get("/flush_cache")
async def flush_cache(request: Request) -> Response:
    state = server_state(request)
    ok = await state.engine.flush_cache()
    return Response("Cache flushed.\n" if ok else "Cache not flushed.\n", 200 if ok else 400)


@health_router.get("/health")
async def health(request: Request) -> Response:
    state: ServerState = request.app.state.omni
    if state.ready and await state.engine.health():
        return Response(status_code=200)
    return Response(status_code=503)


@health_router.get("/health_generate")
async def health_generate(request: Request) -> Response:
    """Healthy only if the engine really generates a token now."""
    state: ServerState = request.app.state.omni
    if not state.ready:
        raise ServiceUnavailableError("the model is not ready")
    probe = EngineRequest(
        rid=f"health-{uuid.uuid4().hex}",
        prompt="ping",
        sampling_params={"max_new_tokens": 1, "temperature": 0},
    )
    async for _ in state.engine.generate(probe):
        pass
    return Response(status_code=200)
