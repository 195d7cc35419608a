"""``/v1/chat/completions`` and ``/v1/completions``."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response

from omni_sglang.adapter.chat import prepare_chat
from omni_sglang.adapter.completions import prepare_completion
from omni_sglang.adapter.constraints import tool_dicts
from omni_sglang.api.io import json_response, primed, read_json, sse_response, unless_disconnected
from omni_sglang.api.openapi import body_schema
from omni_sglang.errors import ServiceUnavailableError
from omni_sglang.output.chat import ChatAssembler, chat_chunks, chat_response
from omni_sglang.output.choice import ChoiceStream
from omni_sglang.output.completions import (
    CompletionAssembler,
    completion_chunks,
    completion_response,
    merge,
)
from omni_sglang.output.usage import media_token_counts
from omni_sglang.protocol.openai import ChatCompletionRequest, CompletionRequest
from omni_sglang.state import ServerState

logger = logging.getLogger(__name__)
router = APIRouter()


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.omni
    if not state.ready:
        raise ServiceUnavailableError(
            "the server is shutting down" if state.draining else "the model is still loading"
        )
    return state


def _reasoning_fields(state: ServerState) -> tuple[str, ...]:
    return tuple(state.config.reasoning_fields)


@router.post("/v1/chat/completions", openapi_extra=body_schema(ChatCompletionRequest))
async def chat_completions(request: Request) -> Response:
    state = server_state(request)
    req = await read_json(request, ChatCompletionRequest, state.config.max_request_bytes)
    prepared = await prepare_chat(req, state)
    plugins = state.plugins

    def make_stream() -> ChoiceStream:
        reasoning = plugins.reasoning.create(prompt=prepared.prompt) if plugins.reasoning else None
        tools = None
        if plugins.tools is not None and req.tools and req.tool_choice != "none":
            tools = plugins.tools.create(
                tool_dicts(req), parallel=req.parallel_tool_calls is not False
            )
        return ChoiceStream(reasoning, tools)

    asm = ChatAssembler(
        prepared.request.rid,
        req.model,
        req.n,
        make_stream,
        _reasoning_fields(state),
        media_token_counts(prepared.request.mm_items),
    )
    outputs = await primed(state.engine.generate(prepared.request))
    headers = warning_headers(prepared.warnings)
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
    response.headers.update(headers)
    return response


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
    state = server_state(request)
    req = await read_json(request, CompletionRequest, state.config.max_request_bytes)
    prepared = prepare_completion(req, state)
    streams = []
    try:
        for engine_request in prepared.requests:
            streams.append(await primed(state.engine.generate(engine_request)))
    except BaseException:
        for stream in streams:
            await stream.aclose()  # type: ignore[attr-defined]
        raise
    asm = CompletionAssembler(
        prepared.requests[0].rid.rsplit("-", 1)[0], req.model, req.n, prepared.prompt_texts
    )
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return sse_response(completion_chunks(asm, merge(streams), include_usage))
    body = await unless_disconnected(request, completion_response(asm, merge(streams)))
    return json_response(body)
