"""The decoders in one place (the loader runs them in a worker thread: decoding is
CPU-bound C code (PIL, FFmpeg) that releases the GIL)."""

from __future__ import annotations

from omni_sglang.media.audio import SAMPLE_RATE, DecodedAudio, decode_audio
from omni_sglang.media.image import decode_image, decode_image_with_warnings
from omni_sglang.media.video import DecodedVideo, decode_video

__all__ = [
    "SAMPLE_RATE",
    "DecodedAudio",
    "DecodedVideo",
    "decode_audio",
    "decode_image",
    "decode_image_with_warnings",
    "decode_video",
]
