"""Loaded media + the rendered prompt -> the engine request's prompt and media fields.

Two kinds of engine: the CPU engine takes our modality processor's expanded token ids
and per-item features (``mm_items``); SGLang expands the placeholders itself, in its own
multimodal processor (our subclass, registered by the plugin inside SGLang's processes),
so it gets token ids with one placeholder per item and the media we fetched, guarded and
checked, in ``image_data`` / ``video_data`` / ``audio_data``: SGLang never fetches a URL.
Shared by the chat endpoint and SGLang's native ``/generate``.
"""

from __future__ import annotations

import asyncio

from omni_sglang.adapter.media import MediaInputs
from omni_sglang.engines.base import EngineRequest
from omni_sglang.errors import InvalidRequestError, UnsupportedFieldError
from omni_sglang.state import ServerState


async def attach_media(
    state: ServerState, prompt: str, media: MediaInputs | None, request: EngineRequest
) -> list[str]:
    """Fill ``request``'s ids and media fields; returns the media warnings."""
    if media is None:
        encoded = await asyncio.to_thread(state.tokenizer, prompt, add_special_tokens=False)
        request.input_ids = encoded.input_ids
        return []
    if state.modality is None:
        raise InvalidRequestError("this server has no modality processor for media", "messages")
    try:
        if state.engine.expands_media:
            # Token ids, not text: SGLang's text path puts every image of a prompt at the
            # first placeholder; its id path expands each one in place.
            try:
                raw = await asyncio.to_thread(state.modality.unexpanded, prompt, media.items)
            except NotImplementedError as exc:  # a plugin without the optional method
                raise UnsupportedFieldError(
                    f"media needs a modality processor that prepares it for an engine that "
                    f"expands media itself; this server's cannot ({exc})",
                    "messages",
                ) from None
            request.input_ids = raw.input_ids
            request.image_data = raw.image_data or None
            request.video_data = raw.video_data or None
            request.audio_data = raw.audio_data or None
        else:
            processed = await asyncio.to_thread(state.modality.process, prompt, media.items)
            request.input_ids = processed.input_ids
            request.mm_items = processed.items
    except ValueError as exc:
        raise InvalidRequestError(f"the media could not be placed in the prompt: {exc}") from exc
    return media.warnings
