"""Prompts and chat requests -> the token ids the model receives, and back: the
``/tokenize``, ``/detokenize`` and ``/v1/chat/completions/render`` answers.

A chat request is rendered exactly as the chat endpoint renders it (``render_chat``),
and its media placeholders are expanded by the modality plugin as the model sees them,
whichever engine serves: SGLang expands them inside its own processor, with the same
plugin, so the ids are the same.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from omni_sglang.adapter.chat import render_chat
from omni_sglang.adapter.completions import MAX_PROMPTS_PER_REQUEST
from omni_sglang.adapter.engine_media import expanded_prompt
from omni_sglang.adapter.media import load_media
from omni_sglang.engines.request_checks import check_vocab_ids
from omni_sglang.errors import InvalidRequestError
from omni_sglang.protocol.openai import ChatCompletionRequest
from omni_sglang.protocol.tokenize import DetokenizeRequest, TokenizeRequest
from omni_sglang.state import ServerState


@dataclass
class RenderedChat:
    prompt: str
    token_ids: list[int]
    media_items: int


async def render_chat_ids(req: ChatCompletionRequest, state: ServerState) -> RenderedChat:
    req, _, prompt = await render_chat(req, state)
    media = await load_media(req, state)
    if media is None:
        encoded = await asyncio.to_thread(state.tokenizer, prompt, add_special_tokens=False)
        return RenderedChat(prompt, list(encoded.input_ids), 0)
    processed = await expanded_prompt(state, prompt, media)
    return RenderedChat(prompt, list(processed.input_ids), len(media.items))


def _token_strs(state: ServerState, ids: list[int]) -> list[str]:
    return [str(t) for t in state.tokenizer.convert_ids_to_tokens(ids)]


def _answer(state: ServerState, ids: list[list[int]], strs: bool, many: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tokens": ids if many else ids[0],
        "count": [len(i) for i in ids] if many else len(ids[0]),
        "max_model_len": state.model_info.max_model_len,
    }
    if strs:
        token_strs = [_token_strs(state, i) for i in ids]
        body["token_strs"] = token_strs if many else token_strs[0]
    return body


async def tokenize(req: TokenizeRequest, state: ServerState) -> dict[str, Any]:
    model = state.check_model(req.model or state.model_names[0])
    if req.messages is not None:
        rendered = await render_chat_ids(req.chat_request(model), state)
        return _answer(state, [rendered.token_ids], req.return_token_strs, many=False)
    prompts = [req.prompt] if isinstance(req.prompt, str) else list(req.prompt or [])
    if not prompts or len(prompts) > MAX_PROMPTS_PER_REQUEST:
        raise InvalidRequestError(
            f"'prompt' holds {len(prompts)} prompts; 1 to {MAX_PROMPTS_PER_REQUEST} allowed",
            "prompt",
        )
    for text in prompts:
        state.check_prompt_chars(len(text))
    encoded = await asyncio.to_thread(
        state.tokenizer, prompts, add_special_tokens=req.add_special_tokens
    )
    ids = [list(i) for i in encoded.input_ids]
    return _answer(state, ids, req.return_token_strs, many=not isinstance(req.prompt, str))


def detokenize(req: DetokenizeRequest, state: ServerState) -> dict[str, Any]:
    state.check_model(req.model or state.model_names[0])
    many = isinstance(req.tokens[0], list)
    batches: list[list[int]] = req.tokens if many else [req.tokens]  # type: ignore[assignment,list-item]
    if len(batches) > MAX_PROMPTS_PER_REQUEST:
        raise InvalidRequestError(
            f"'tokens' holds {len(batches)} sequences; at most {MAX_PROMPTS_PER_REQUEST}", "tokens"
        )
    for ids in batches:
        check_vocab_ids(ids, len(state.tokenizer), "tokens")
    texts = [
        state.tokenizer.decode(ids, skip_special_tokens=req.skip_special_tokens) for ids in batches
    ]
    return {"text": texts if many else texts[0]}
