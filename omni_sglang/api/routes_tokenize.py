"""``/tokenize``, ``/detokenize`` (also under ``/v1``, as SGLang and vLLM serve them) and
``/v1/chat/completions/render``: what the model receives, without generating."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from omni_sglang.adapter.tokenize import detokenize, render_chat_ids, tokenize
from omni_sglang.admission import Ticket
from omni_sglang.api.io import json_response, read_json
from omni_sglang.api.openapi import body_schema
from omni_sglang.api.routes_openai import admitted
from omni_sglang.protocol.openai import ChatCompletionRequest
from omni_sglang.protocol.tokenize import DetokenizeRequest, TokenizeRequest
from omni_sglang.state import ServerState

router = APIRouter()


def _answered(ticket: Ticket, body: dict[str, Any]) -> Response:
    ticket.release()
    return json_response(body)


@router.post("/tokenize", openapi_extra=body_schema(TokenizeRequest))
@router.post("/v1/tokenize", openapi_extra=body_schema(TokenizeRequest))
async def tokenize_route(request: Request) -> Response:
    async def handle(request: Request, state: ServerState, ticket: Ticket) -> Response:
        req = await read_json(request, TokenizeRequest, state.config.max_request_bytes)
        return _answered(ticket, await tokenize(req, state))

    return await admitted(request, handle)


@router.post("/detokenize", openapi_extra=body_schema(DetokenizeRequest))
@router.post("/v1/detokenize", openapi_extra=body_schema(DetokenizeRequest))
async def detokenize_route(request: Request) -> Response:
    async def handle(request: Request, state: ServerState, ticket: Ticket) -> Response:
        req = await read_json(request, DetokenizeRequest, state.config.max_request_bytes)
        return _answered(ticket, detokenize(req, state))

    return await admitted(request, handle)


@router.post("/v1/chat/completions/render", openapi_extra=body_schema(ChatCompletionRequest))
async def render_route(request: Request) -> Response:
    """The chat request's prompt as the template renders it, and its token ids with the
    media placeholders expanded: exactly what a chat completion would prefill."""

    async def handle(request: Request, state: ServerState, ticket: Ticket) -> Response:
        req = await read_json(request, ChatCompletionRequest, state.config.max_request_bytes)
        rendered = await render_chat_ids(req, state)
        body = {
            "prompt": rendered.prompt,
            "prompt_token_ids": rendered.token_ids,
            "count": len(rendered.token_ids),
            "media_items": rendered.media_items,
            "max_model_len": state.model_info.max_model_len,
        }
        return _answered(ticket, body)

    return await admitted(request, handle)
