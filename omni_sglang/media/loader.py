"""The one entry point of the media layer: a URL (or base64 audio) in, decoded media out.

Order of work, cheapest refusal first: options are validated, then the bytes are got
(capped per kind), then sniffed and checked against what the client declared, then
decoded (once per content and options, through ``MediaCache``), in a worker thread
and at most ``max_concurrent_decodes`` at a time so a burst of videos cannot take all
cores and memory at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from omni_sglang.media.audio import DecodedAudio, decode_audio
from omni_sglang.media.cache import MediaCache
from omni_sglang.media.datauri import decode_base64_payload, parse_data_uri
from omni_sglang.media.errors import MediaError, MediaLimitError
from omni_sglang.media.fetch import FetchPolicy, load_bytes
from omni_sglang.media.image import decode_image_with_warnings
from omni_sglang.media.limits import MODALITIES
from omni_sglang.media.sampling import FrameRequest, check_request
from omni_sglang.media.sniff import MediaFormat, check_declared_mime, check_modality, sniff
from omni_sglang.media.video import DecodedVideo, decode_video

#: Formats OpenAI's ``input_audio.format`` may name (OpenAI itself lists wav and mp3).
INPUT_AUDIO_FORMATS = ("wav", "mp3", "flac", "m4a")
_BIG = 1 << 20  # above this, hashing and base64 run in a thread


@dataclass
class LoadedMedia:
    modality: str
    data: Image.Image | DecodedVideo | DecodedAudio
    #: sha256 of the bytes and the decode options: equal hashes mean equal ``data``.
    content_hash: str
    warnings: list[str] = field(default_factory=list)
    format: MediaFormat | None = None
    #: Size of the encoded media.
    source_bytes: int = 0
    #: The encoded media itself (engines that decode media themselves get these bytes).
    source: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class VideoOptions:
    fps: float | None = None
    num_frames: int | None = None
    use_audio_in_video: bool = False
    #: False: plan the frames only (the engine decodes the video itself).
    decode_frames: bool = True

    def key(self) -> str:
        req = FrameRequest.from_options(self.fps, self.num_frames)
        return f"{req.key()},audio={self.use_audio_in_video},pixels={self.decode_frames}"


@dataclass
class _Decoded:
    value: Image.Image | DecodedVideo | DecodedAudio
    warnings: list[str]
    nbytes: int


class MediaLoader:
    def __init__(
        self,
        policy: FetchPolicy | None = None,
        cache: MediaCache | None = None,
        *,
        max_concurrent_decodes: int = 2,
    ):
        self.policy = policy or FetchPolicy()
        self.cache = cache or MediaCache()
        self.limits = self.policy.limits
        self._decode_slots = asyncio.Semaphore(max_concurrent_decodes)

    async def warmup(self) -> None:
        """Import the decoders now (torchcodec imports torch: ~5 s) rather than on the
        first media request; call once at start-up."""

        def imports() -> None:
            import torchcodec.decoders  # noqa: F401

        await asyncio.to_thread(imports)

    async def load(
        self, modality: str, url: str, options: Mapping[str, Any] | None = None
    ) -> LoadedMedia:
        """``modality`` is image, video or audio; ``options`` fps / num_frames /
        use_audio_in_video (video only; ignored for the others)."""
        if modality not in MODALITIES:
            raise MediaError(f"unknown media kind {modality!r}; expected one of {MODALITIES}")
        if not isinstance(url, str) or not url:
            raise MediaError(f"the {modality}_url part has no url")
        opts = parse_video_options(options) if modality == "video" else VideoOptions()
        if modality == "video":
            check_request(
                FrameRequest.from_options(opts.fps, opts.num_frames), self.limits.max_video_frames
            )
        cap = self.limits.max_bytes_for(modality)

        declared: str | None = None
        if url[:5].lower() == "data:":
            uri = await _maybe_thread(len(url), parse_data_uri, url, cap)
            data, declared = uri.data, uri.mime
        elif url[:7].lower() == "http://" or url[:8].lower() == "https://":
            data = await self.cache.get_or_fetch(
                f"{cap}:{url}", lambda: load_bytes(url, self.policy, max_bytes=cap)
            )
        else:
            data = await load_bytes(url, self.policy, max_bytes=cap)

        fmt = sniff(data)
        check_declared_mime(declared, fmt)
        check_modality(modality, fmt, f"{modality}_url")
        return await self._decode(modality, data, fmt, opts)

    async def load_input_audio(self, b64: str, fmt: str) -> LoadedMedia:
        """OpenAI ``{"type": "input_audio", "input_audio": {"data": b64, "format": fmt}}``."""
        name = (fmt or "").lower()
        if name not in INPUT_AUDIO_FORMATS:
            raise MediaError(
                f"input_audio format {fmt!r} is not supported; use one of "
                f"{', '.join(INPUT_AUDIO_FORMATS)}"
            )
        if not isinstance(b64, str) or not b64:
            raise MediaError("input_audio has no data")
        data = await _maybe_thread(
            len(b64), decode_base64_payload, b64, self.limits.max_audio_bytes, "input_audio data"
        )
        found = sniff(data)
        check_modality("audio", found, "input_audio")
        if found.format != name:
            raise MediaError(f"input_audio format is {name!r} but the bytes are {found.phrase}")
        return await self._decode("audio", data, found, VideoOptions())

    async def load_audio_file(self, data: bytes) -> LoadedMedia:
        """An uploaded audio file (``/v1/audio/transcriptions``), held to the same
        limits and checks as audio in a chat request."""
        if len(data) > self.limits.max_audio_bytes:
            raise MediaLimitError(
                f"the audio file is {len(data)} bytes; the limit is {self.limits.max_audio_bytes}"
            )
        if not data:
            raise MediaError("the audio file is empty")
        fmt = sniff(data)
        check_modality("audio", fmt, "file")
        return await self._decode("audio", data, fmt, VideoOptions())

    async def _decode(
        self, modality: str, data: bytes, fmt: MediaFormat, opts: VideoOptions
    ) -> LoadedMedia:
        digest = await _maybe_thread(len(data), _sha256, data)
        key = hashlib.sha256(f"{modality}|{digest}|{opts.key()}".encode()).hexdigest()

        async def work() -> _Decoded:
            async with self._decode_slots:
                return await asyncio.to_thread(self._decode_sync, modality, data, fmt, opts)

        entry = await self.cache.get_or_decode(key, work, lambda d: d.nbytes)
        return LoadedMedia(
            modality=modality,
            data=entry.value,
            content_hash=key,
            warnings=list(entry.warnings),
            format=fmt,
            source_bytes=len(data),
            source=data,
        )

    def _decode_sync(
        self, modality: str, data: bytes, fmt: MediaFormat, opts: VideoOptions
    ) -> _Decoded:
        if modality == "image":
            image, notes = decode_image_with_warnings(data, self.limits)
            return _Decoded(image, notes, image.width * image.height * len(image.getbands()))
        if modality == "video":
            video = decode_video(
                data,
                self.limits,
                opts.fps,
                opts.num_frames,
                opts.use_audio_in_video,
                decode_frames=opts.decode_frames,
            )
            return _Decoded(video, video.warnings, video.nbytes)
        audio = decode_audio(data, self.limits, fmt=fmt.format)
        return _Decoded(audio, audio.warnings, audio.nbytes)


def parse_video_options(options: Mapping[str, Any] | None) -> VideoOptions:
    """fps / num_frames / use_audio_in_video from the request, checked for type; and the
    server's ``decode_frames``."""
    if not options:
        return VideoOptions()
    fps = options.get("fps")
    num_frames = options.get("num_frames")
    use_audio = options.get("use_audio_in_video", False)
    if fps is not None and (
        isinstance(fps, bool) or not isinstance(fps, int | float) or not math.isfinite(fps)
    ):
        raise MediaError(f"video fps must be a number (or -1 for unset), not {fps!r}")
    if num_frames is not None:
        if isinstance(num_frames, float) and num_frames.is_integer():
            num_frames = int(num_frames)
        if isinstance(num_frames, bool) or not isinstance(num_frames, int):
            raise MediaError(
                f"video num_frames must be an integer (or -1 for unset), not {num_frames!r}"
            )
    if use_audio is None:
        use_audio = False
    if not isinstance(use_audio, bool):
        raise MediaError(f"use_audio_in_video must be true or false, not {use_audio!r}")
    decode_frames = bool(options.get("decode_frames", True))
    return VideoOptions(fps, num_frames, use_audio, decode_frames)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _maybe_thread(size: int, fn: Any, *args: Any) -> Any:
    if size > _BIG:
        return await asyncio.to_thread(fn, *args)
    return fn(*args)
