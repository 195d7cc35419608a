"""The decoders, and their async forms that run them off the event loop.

Decoding is CPU-bound C code (PIL, FFmpeg) that releases the GIL, so a worker thread
keeps the server answering other requests while a video decodes.
"""

from __future__ import annotations

import asyncio

from PIL import Image

from omni_sglang.media.audio import SAMPLE_RATE, DecodedAudio, decode_audio
from omni_sglang.media.image import decode_image, decode_image_with_warnings
from omni_sglang.media.limits import MediaLimits
from omni_sglang.media.video import DecodedVideo, decode_video

__all__ = [
    "SAMPLE_RATE",
    "DecodedAudio",
    "DecodedVideo",
    "decode_audio",
    "decode_audio_async",
    "decode_image",
    "decode_image_async",
    "decode_image_with_warnings",
    "decode_video",
    "decode_video_async",
]


async def decode_image_async(data: bytes, limits: MediaLimits) -> Image.Image:
    return await asyncio.to_thread(decode_image, data, limits)


async def decode_video_async(
    data: bytes,
    limits: MediaLimits,
    fps: float | None = None,
    num_frames: int | None = None,
    with_audio: bool = False,
) -> DecodedVideo:
    return await asyncio.to_thread(decode_video, data, limits, fps, num_frames, with_audio)


async def decode_audio_async(data: bytes, limits: MediaLimits) -> DecodedAudio:
    return await asyncio.to_thread(decode_audio, data, limits)
