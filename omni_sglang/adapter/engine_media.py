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
import contextlib
from collections.abc import Iterator

from omni_sglang.adapter.media import MediaInputs
from omni_sglang.engines.base import EngineRequest
from omni_sglang.errors import InvalidRequestError, UnsupportedFieldError
from omni_sglang.plugin_api import ModalityProcessor, ProcessedPrompt
from omni_sglang.state import ServerState


async def attach_media(
    state: ServerState, prompt: str, media: MediaInputs | None, request: EngineRequest
) -> list[str]:
    """Fill ``request``'s ids and media fields; returns the media warnings."""
    if media is None:
        encoded = await asyncio.to_thread(state.tokenizer, prompt, add_special_tokens=False)
        request.input_ids = encoded.input_ids
        return []
    modality = _modality(state)
    with _placing():
        if state.engine.expands_media:
            # Token ids, not text: SGLang's text path puts every image of a prompt at the
            # first placeholder; its id path expands each one in place.
            try:
                raw = await asyncio.to_thread(modality.unexpanded, prompt, media.items)
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
            processed = await expanded_prompt(state, prompt, media)
            request.input_ids = processed.input_ids
            request.mm_items = processed.items
    return media.warnings


async def expanded_prompt(state: ServerState, prompt: str, media: MediaInputs) -> ProcessedPrompt:
    """The prompt's ids with every media placeholder expanded, as the model sees them
    (SGLang expands them with the same plugin inside its own processor)."""
    modality = _modality(state)
    with _placing():
        return await asyncio.to_thread(modality.process, prompt, media.items)


def _modality(state: ServerState) -> ModalityProcessor:
    if state.modality is None:
        raise InvalidRequestError("this server has no modality processor for media", "messages")
    return state.modality


@contextlib.contextmanager
def _placing() -> Iterator[None]:
    try:
        yield
    except ValueError as exc:
        raise InvalidRequestError(f"the media could not be placed in the prompt: {exc}") from exc
