"""Media parts of a chat request -> decoded media -> the engine's media inputs.

NIM's request fields are checked here: ``media_io_kwargs`` (``{"video": {"fps": F,
"num_frames": N}}``, -1 meaning unset; the server's defaults fill what the request leaves
out) and ``mm_processor_kwargs`` (``use_audio_in_video``; beyond NIM,
``video_pruning_rate``). Items are fetched and decoded concurrently, through the media
cache, so one video shared by many requests is fetched and decoded once.

``engine_media`` turns the loaded items into the engine request's media fields.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any

from omni_sglang.errors import InvalidRequestError
from omni_sglang.media import LoadedMedia
from omni_sglang.plugin_api import MediaItem
from omni_sglang.protocol.openai import ChatCompletionRequest
from omni_sglang.state import ServerState

_PART_MODALITY = {"image_url": "image", "video_url": "video", "audio_url": "audio"}
_MM_KEYS = {"use_audio_in_video": bool, "video_pruning_rate": float}


@dataclass
class MediaInputs:
    items: list[MediaItem]
    warnings: list[str] = field(default_factory=list)


def _video_options(req: ChatCompletionRequest, state: ServerState) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for source in (state.config.media_io_kwargs, req.media_io_kwargs):
        for key, value in (source or {}).items():
            if key != "video" or not isinstance(value, dict):
                raise InvalidRequestError(
                    f"media_io_kwargs supports only {{'video': {{'fps': ..., 'num_frames': ...}}}};"
                    f" got key {key!r}",
                    "media_io_kwargs",
                )
            unknown = set(value) - {"fps", "num_frames"}
            if unknown:
                raise InvalidRequestError(
                    f"media_io_kwargs.video accepts fps and num_frames; got {sorted(unknown)}",
                    "media_io_kwargs",
                )
            merged.update(value)
    return merged


def _mm_options(req: ChatCompletionRequest, state: ServerState) -> dict[str, Any]:
    options = dict(req.mm_processor_kwargs or {})
    for key, value in options.items():
        kind = _MM_KEYS.get(key)
        if kind is None:
            raise InvalidRequestError(
                f"mm_processor_kwargs accepts {', '.join(_MM_KEYS)}; got {key!r}",
                "mm_processor_kwargs",
            )
        if kind is bool and not isinstance(value, bool):
            raise InvalidRequestError(f"mm_processor_kwargs.{key} must be true or false", key)
        if kind is float and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not 0 <= value < 1
        ):
            raise InvalidRequestError(
                f"mm_processor_kwargs.{key} must be a number in [0, 1); got {value!r}", key
            )
    options.setdefault("use_audio_in_video", False)
    server_rate = state.config.video_pruning_rate
    options.setdefault("video_pruning_rate", server_rate)
    if state.engine.expands_media and server_rate == 0 and options["video_pruning_rate"] > 0:
        # SGLang builds the model's EVS only when the server's rate is above 0.
        raise InvalidRequestError(
            "mm_processor_kwargs.video_pruning_rate needs EVS on this server, which runs "
            "SGLang with video_pruning_rate 0 (set NIM_VIDEO_PRUNING_RATE above 0 to allow it)",
            "video_pruning_rate",
        )
    return options


def media_parts(req: ChatCompletionRequest) -> list[tuple[str, Any]]:
    """(modality, part) for every media part, in prompt order."""
    parts = []
    for message in req.messages:
        if isinstance(message.content, list):
            for part in message.content:
                if part.type in _PART_MODALITY:
                    parts.append((_PART_MODALITY[part.type], part))
                elif part.type == "input_audio":
                    parts.append(("audio", part))
    return parts


async def _load(
    state: ServerState, modality: str, part: Any, video: dict[str, Any], use_audio: bool
) -> LoadedMedia:
    loader = state.media_loader
    assert loader is not None
    if part.type == "input_audio":
        return await loader.load_input_audio(part.input_audio.data, part.input_audio.format)
    url = getattr(part, part.type).url
    options: dict[str, Any] = {}
    if modality == "video":
        # An engine that expands media decodes the video itself: plan the frames only.
        pixels = not state.engine.expands_media
        options = {**video, "use_audio_in_video": use_audio, "decode_frames": pixels}
    return await loader.load(modality, url, options)


async def load_media(req: ChatCompletionRequest, state: ServerState) -> MediaInputs | None:
    parts = media_parts(req)
    if not parts:
        return None
    if state.media_loader is None:
        raise InvalidRequestError("this server has no media support configured", "messages")
    state.media_loader.limits.check_item_count(len(parts))
    video = _video_options(req, state)
    mm = _mm_options(req, state)
    loaded = await asyncio.gather(
        *(_load(state, modality, part, video, mm["use_audio_in_video"]) for modality, part in parts)
    )
    items, warnings = [], []
    for media in loaded:
        warnings += media.warnings
        options = {"content_hash": media.content_hash}
        if media.modality == "video":
            options.update(mm)
        items.append(MediaItem(media.modality, media.data, options, source=media.source))
    return MediaInputs(items, warnings)
