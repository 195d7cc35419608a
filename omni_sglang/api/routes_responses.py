"""``/v1/responses``: OpenAI's Responses API on the chat pipeline. The request becomes
the chat request it means (adapter/responses.py), runs as one (``start_chat``), and its
chunks become output items and events (output/responses.py); stored responses can be
read back, deleted, and continued with ``previous_response_id``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from omni_sglang.adapter.responses import chat_body, input_messages
from omni_sglang.admission import Ticket
from omni_sglang.api.io import (
    json_response,
    read_json,
    sse_response,
    unless_disconnected,
    validated,
)
from omni_sglang.api.openapi import body_schema
from omni_sglang.api.routes_openai import admitted, server_state, start_chat
from omni_sglang.errors import InvalidRequestError, NotFoundError
from omni_sglang.output.chat import chat_chunks
from omni_sglang.output.responses import ResponseBuilder, response_events
from omni_sglang.protocol.openai import ChatCompletionRequest
from omni_sglang.protocol.responses import ResponsesRequest
from omni_sglang.responses_store import StoredResponse
from omni_sglang.state import ServerState

router = APIRouter()


def _echoed(req: ResponsesRequest) -> dict[str, Any]:
    """The request's settings a Response object repeats back."""
    reasoning = req.reasoning.model_dump() if req.reasoning else {"effort": None, "summary": None}
    text = req.text.model_dump(by_alias=True, exclude_none=True) if req.text else {}
    return {
        "model": req.model,
        "instructions": req.instructions,
        "tools": [t.model_dump() for t in req.tools or []],
        "tool_choice": (
            req.tool_choice.model_dump()
            if req.tool_choice is not None and not isinstance(req.tool_choice, str)
            else req.tool_choice or "auto"
        ),
        "parallel_tool_calls": req.parallel_tool_calls is not False,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "top_logprobs": req.top_logprobs,
        "max_output_tokens": req.max_output_tokens,
        "previous_response_id": req.previous_response_id,
        "reasoning": reasoning,
        "text": {"format": {"type": "text"}, **text},
        "truncation": "disabled",
        "store": req.store,
        "background": False,
        "metadata": req.metadata or {},
        "user": req.user,
    }


def _history(req: ResponsesRequest, state: ServerState) -> list[dict[str, Any]]:
    if req.previous_response_id is None:
        return []
    stored = state.responses.get(req.previous_response_id)
    if stored is None:
        raise InvalidRequestError(
            f"no stored response {req.previous_response_id!r}: responses with 'store' true "
            f"are kept in memory (the most recent {state.responses.capacity}, within "
            f"{state.responses.max_bytes} bytes) until a restart",
            "previous_response_id",
        )
    return stored.messages


@router.post("/v1/responses", openapi_extra=body_schema(ResponsesRequest))
async def create_response(request: Request) -> Response:
    return await admitted(request, _create_response)


async def _create_response(request: Request, state: ServerState, ticket: Ticket) -> Response:
    req = await read_json(request, ResponsesRequest, state.config.max_request_bytes)
    conversation = [*_history(req, state), *input_messages(req.input)]
    chat = validated(ChatCompletionRequest, chat_body(req, conversation))
    asm, outputs, headers = await start_chat(chat, state, ticket)
    summary = bool(req.reasoning and (req.reasoning.summary or req.reasoning.generate_summary))
    builder = ResponseBuilder(_echoed(req), asm.reasoning_fields, summary)
    events = response_events(builder, chat_chunks(asm, outputs, include_usage=True))
    if req.store:
        events = _stored_when_done(state, builder, conversation, events)
    if req.stream:
        response: Response = sse_response(events, typed=True)
    else:
        await unless_disconnected(request, _drain(events))
        ticket.release()
        response = json_response(builder.response)
    response.headers.update(headers)
    return response


async def _drain(events: AsyncIterator[dict[str, Any]]) -> None:
    async for _ in events:
        pass


async def _stored_when_done(
    state: ServerState,
    builder: ResponseBuilder,
    conversation: list[dict[str, Any]],
    events: AsyncIterator[dict[str, Any]],
) -> AsyncIterator[dict[str, Any]]:
    """``events``, then the finished response kept with the conversation it ends."""
    async for event in events:
        yield event
    messages = [*conversation, builder.assistant_message()]
    state.responses.put(StoredResponse(builder.response, messages))


def _stored(request: Request, response_id: str) -> StoredResponse:
    stored = server_state(request).responses.get(response_id)
    if stored is None:
        raise NotFoundError(f"no stored response {response_id!r}", "response_id")
    return stored


@router.get("/v1/responses/{response_id}")
async def get_response(request: Request, response_id: str) -> Response:
    return json_response(_stored(request, response_id).response)


@router.delete("/v1/responses/{response_id}")
async def delete_response(request: Request, response_id: str) -> Response:
    _stored(request, response_id)
    server_state(request).responses.delete(response_id)
    return json_response({"id": response_id, "object": "response", "deleted": True})
