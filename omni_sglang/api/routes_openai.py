"""``/v1/chat/completions`` and ``/v1/completions``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response

from omni_sglang.adapter.chat import prepare_chat
from omni_sglang.adapter.completions import prepare_completion
from omni_sglang.adapter.constraints import tool_dicts
from omni_sglang.adapter.sampling import defaults_header
from omni_sglang.admission import Ticket
from omni_sglang.api.io import json_response, primed, read_json, sse_response, unless_disconnected
from omni_sglang.api.openapi import body_schema
from omni_sglang.engines.base import EngineOutput, EngineRequest
from omni_sglang.errors import ServiceUnavailableError
from omni_sglang.metrics import timed
from omni_sglang.output.chat import ChatAssembler, chat_chunks, chat_response
from omni_sglang.output.choice import ChoiceStream
from omni_sglang.output.completions import (
    CompletionAssembler,
    completion_chunks,
    completion_response,
    merge,
)
from omni_sglang.protocol.openai import ChatCompletionRequest, CompletionRequest
from omni_sglang.state import ServerState

logger = logging.getLogger(__name__)
router = APIRouter()


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.omni
    if state.engine.failure is not None:
        raise state.engine.failure
    if not state.ready:
        raise ServiceUnavailableError(
            "the server is shutting down" if state.draining else "the model is still loading"
        )
    return state


def _reasoning_fields(state: ServerState) -> tuple[str, ...]:
    return tuple(state.config.reasoning_fields)


async def admitted(
    request: Request, handler: Callable[[Request, ServerState, Ticket], Awaitable[Response]]
) -> Response:
    """Run a generation route under admission control (capacity, time limit, draining)."""
    state = server_state(request)
    ticket = state.admission.admit()
    try:
        return await handler(request, state, ticket)
    except BaseException:
        ticket.release()
        raise


async def open_streams(
    state: ServerState, requests: list[EngineRequest], ticket: Ticket
) -> AsyncIterator[tuple[int, EngineOutput]]:
    """Start every request (errors surface now, as 4xx) and interleave their outputs."""
    streams = []
    try:
        for engine_request in requests:
            streams.append(
                timed(await primed(state.engine.generate(engine_request)), ticket.started)
            )
    except BaseException:
        for stream in streams:
            await stream.aclose()  # type: ignore[attr-defined]
        raise
    return ticket.guard(merge(streams))


@router.post("/v1/chat/completions", openapi_extra=body_schema(ChatCompletionRequest))
async def chat_completions(request: Request) -> Response:
    return await admitted(request, _chat_completions)


async def _chat_completions(request: Request, state: ServerState, ticket: Ticket) -> Response:
    req = await read_json(request, ChatCompletionRequest, state.config.max_request_bytes)
    asm, outputs, headers = await start_chat(req, state, ticket)
    if req.stream:
        options = req.stream_options
        response: Response = sse_response(
            chat_chunks(
                asm,
                outputs,
                include_usage=bool(options and options.include_usage),
                continuous_usage=bool(options and options.continuous_usage_stats),
            )
        )
    else:
        response = json_response(await unless_disconnected(request, chat_response(asm, outputs)))
        ticket.release()
    response.headers.update(headers)
    return response


async def start_chat(
    req: ChatCompletionRequest, state: ServerState, ticket: Ticket
) -> tuple[ChatAssembler, AsyncIterator[EngineOutput], dict[str, str]]:
    """Start a chat request on the engine (errors surface now, as 4xx): its assembler,
    its outputs, and the headers its response carries. ``/v1/responses`` runs here too."""
    prepared = await prepare_chat(req, state)
    plugins = state.plugins

    def make_stream() -> ChoiceStream:
        reasoning = plugins.reasoning.create(prompt=prepared.prompt) if plugins.reasoning else None
        tools = None
        if plugins.tools is not None and req.tools and req.tool_choice != "none":
            tools = plugins.tools.create(
                tool_dicts(req), parallel=req.parallel_tool_calls is not False
            )
        return ChoiceStream(reasoning, tools, prepared.reasoning_end_ids)

    asm = ChatAssembler(
        prepared.request.rid,
        req.model,
        req.n,
        make_stream,
        _reasoning_fields(state),
        state.token_names if req.logprobs else None,
    )
    outputs = ticket.guard(
        timed(await primed(state.engine.generate(prepared.request)), ticket.started)
    )
    headers = {**warning_headers(prepared.warnings), **defaults_header(prepared.sampling_defaults)}
    return asm, outputs, headers


def warning_headers(warnings: list[str]) -> dict[str, str]:
    """RFC 7234 ``Warning`` (code 199: miscellaneous), one value per warning."""
    for text in warnings:
        logger.warning("request warning: %s", text)
    if not warnings:
        return {}
    quoted = ", ".join('199 omni-sglang "' + w.replace('"', "'") + '"' for w in warnings)
    return {"Warning": quoted}


@router.post("/v1/completions", openapi_extra=body_schema(CompletionRequest))
async def completions(request: Request) -> Response:
    return await admitted(request, _completions)


async def _completions(request: Request, state: ServerState, ticket: Ticket) -> Response:
    req = await read_json(request, CompletionRequest, state.config.max_request_bytes)
    prepared = prepare_completion(req, state)
    outputs = await open_streams(state, prepared.requests, ticket)
    asm = CompletionAssembler(
        prepared.requests[0].rid.rsplit("-", 1)[0],
        req.model,
        req.n,
        prepared.prompt_texts,
        state.token_names if req.logprobs is not None else None,
    )
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        response: Response = sse_response(completion_chunks(asm, outputs, include_usage))
    else:
        body = await unless_disconnected(request, completion_response(asm, outputs))
        ticket.release()
        response = json_response(body)
    response.headers.update(warning_headers(prepared.warnings))
    return response
