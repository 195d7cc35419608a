"""A validated chat request -> an ``EngineRequest`` in SGLang's schema.

Fields whose meaning this server cannot honour are refused here with a message that
says what is allowed; nothing that changes the answer is dropped silently.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from omni_sglang.adapter.chat_template import render_chat_prompt
from omni_sglang.adapter.constraints import apply_constraints
from omni_sglang.adapter.engine_media import attach_media
from omni_sglang.adapter.media import load_media, media_parts
from omni_sglang.adapter.sampling import (
    applicable_defaults,
    custom_processor,
    resolve_max_new_tokens,
    sampling_params,
    seed_warnings,
)
from omni_sglang.adapter.thinking import attach_thinking_budget, resolve_thinking
from omni_sglang.engines.base import EngineRequest
from omni_sglang.errors import InvalidRequestError, UnsupportedFieldError
from omni_sglang.metrics import MEDIA_PREP
from omni_sglang.protocol.openai import ChatCompletionRequest
from omni_sglang.state import ServerState


@dataclass
class PreparedChat:
    request: EngineRequest
    prompt: str
    prompt_tokens: int
    #: Things the client should know that did not stop the request (a video without
    #: sound asked for its audio, ...): sent as ``Warning`` headers and logged.
    warnings: list[str] = field(default_factory=list)
    #: The model's recommended sampling values this request runs with.
    sampling_defaults: dict[str, Any] = field(default_factory=dict)
    #: The tokens that close the reasoning the prompt opened (None: none opened).
    reasoning_end_ids: list[int] | None = None


def _refuse_unimplemented(req: ChatCompletionRequest, state: ServerState) -> None:
    if req.tool_choice not in (None, "none") and not req.tools:
        raise InvalidRequestError("'tool_choice' needs 'tools'", "tool_choice")
    if req.tools and req.tool_choice != "none" and state.plugins.tools is None:
        raise UnsupportedFieldError(
            "this server has no tool-call parser configured (--tool-parser), so tool "
            "calls could not be returned; send tool_choice 'none' or configure one",
            "tools",
        )
    if media_parts(req) and state.plugins.modality is None:
        raise UnsupportedFieldError(
            "this server has no modality processor configured (--modality-processor), "
            "so it accepts text parts only",
            "messages",
        )


def _text_chars(req: ChatCompletionRequest) -> int:
    total = 0
    for message in req.messages:
        if isinstance(message.content, str):
            total += len(message.content)
        elif message.content:
            total += sum(len(part.text) for part in message.content if part.type == "text")
    return total


async def _media_prompt(
    req: ChatCompletionRequest, state: ServerState, prompt: str, request: EngineRequest
) -> list[str]:
    """Load the request's media; fill the engine request's ids and media fields."""
    started = time.monotonic()
    try:
        return await attach_media(state, prompt, await load_media(req, state), request)
    finally:
        if request.mm_items or request.image_data or request.video_data or request.audio_data:
            MEDIA_PREP.observe(time.monotonic() - started)


def _engine_expands(state: ServerState, request: EngineRequest) -> bool:
    has_media = request.image_data or request.video_data or request.audio_data
    return bool(state.engine.expands_media and has_media)


async def render_chat(
    req: ChatCompletionRequest, state: ServerState
) -> tuple[ChatCompletionRequest, int | None, str]:
    """The request checked and as its ``reasoning_effort`` means it, its reasoning
    budget, and its prompt as the chat template renders it."""
    state.check_model(req.model)
    _refuse_unimplemented(req, state)
    req, budget = resolve_thinking(req, state)
    state.check_prompt_chars(_text_chars(req))
    # Rendering and tokenizing a long prompt takes a while: off the event loop.
    prompt = await asyncio.to_thread(render_chat_prompt, state.tokenizer, req)
    return req, budget, prompt


async def prepare_chat(req: ChatCompletionRequest, state: ServerState) -> PreparedChat:
    req, budget, prompt = await render_chat(req, state)
    engine_request = EngineRequest(
        rid=f"chatcmpl-{uuid.uuid4().hex}",
        stream=req.stream,
        return_logprob=req.logprobs,
        top_logprobs_num=req.top_logprobs or 0,
    )
    warnings = await _media_prompt(req, state, prompt, engine_request)
    prompt_len = len(engine_request.input_ids or [])
    info = state.model_info
    requested = req.max_completion_tokens or req.max_tokens
    max_new = resolve_max_new_tokens(requested, prompt_len, info.max_model_len)
    defaults: dict[str, Any] = {}
    if state.config.model_sampling_defaults and state.plugins.reasoning is not None:
        defaults = applicable_defaults(req, state.plugins.reasoning.sampling_defaults(prompt))
    params: dict[str, Any] = sampling_params(
        req,
        max_new_tokens=max_new,
        max_n=state.config.max_n,
        max_stops=state.config.max_stop_sequences,
        defaults=defaults,
    )
    if requested is None and _engine_expands(state, engine_request):
        # The engine expands the media placeholders itself, so only it knows the prompt's
        # length: unset is SGLang's own "whatever room the context has".
        params["max_new_tokens"] = None
    engine_request.sampling_params = params
    warnings = [*warnings, *seed_warnings(req, state.engine.honours_seed)]
    engine_request.custom_logit_processor = custom_processor(
        req, state.config.enable_custom_logit_processor
    )
    reasoning = state.plugins.reasoning
    end_ids = reasoning.reasoning_end_ids(prompt, state.tokenizer) if reasoning else None
    apply_constraints(req, state, end_ids, engine_request)
    attach_thinking_budget(budget, state, prompt, max_new, engine_request)
    return PreparedChat(engine_request, prompt, prompt_len, warnings, defaults, end_ids)
