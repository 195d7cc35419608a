"""How much media one request may bring: sizes, pixels, durations, frames, items, time.

The defaults follow what the model can use and what one 2-core host can decode in
reasonable time: SGLang's Nemotron processor samples at most 128 frames; the audio
encoder is fed 16 kHz mono; ten minutes of video or audio is already a long prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

from omni_sglang.media.errors import MediaError, MediaLimitError

MiB = 1024 * 1024
MODALITIES = ("image", "video", "audio")


@dataclass(frozen=True)
class MediaLimits:
    # Encoded bytes per item, after base64 decoding / download. Video is the largest
    # because a few minutes of 720p H.264 is tens of MiB; a 12 MP JPEG is 3-8 MiB.
    max_image_bytes: int = 16 * MiB
    max_video_bytes: int = 64 * MiB
    max_audio_bytes: int = 32 * MiB
    #: Pixels of one image, checked from the header before decoding (decompression bombs).
    max_image_pixels: int = 40_000_000
    max_video_seconds: float = 600.0
    #: Frames sampled from one video; SGLang's Nemotron processor also stops at 128.
    max_video_frames: int = 128
    #: Larger frames are scaled down while decoding (keeps 128 frames under ~800 MB).
    max_video_frame_pixels: int = 1920 * 1088
    max_audio_seconds: float = 600.0
    max_items_per_request: int = 16
    connect_timeout: float = 5.0
    #: Longest wait for the next chunk of a download.
    read_timeout: float = 30.0
    #: Whole download, so a host trickling bytes cannot hold a request forever.
    total_fetch_timeout: float = 120.0
    max_redirects: int = 3

    def max_bytes_for(self, modality: str) -> int:
        if modality == "image":
            return self.max_image_bytes
        if modality == "video":
            return self.max_video_bytes
        if modality == "audio":
            return self.max_audio_bytes
        raise MediaError(f"unknown media kind {modality!r}; expected one of {MODALITIES}")

    @property
    def max_fetch_bytes(self) -> int:
        """The largest item of any kind: the cap when the kind is not known yet."""
        return max(self.max_image_bytes, self.max_video_bytes, self.max_audio_bytes)

    def check_item_count(self, count: int) -> None:
        """Called by the adapter with the number of media parts in one request."""
        if count > self.max_items_per_request:
            raise MediaLimitError(
                f"the request has {count} media items; the limit is "
                f"{self.max_items_per_request} per request"
            )


def describe_bytes(n: int) -> str:
    """Sizes in messages: exact bytes plus a readable unit."""
    if n >= MiB:
        return f"{n} bytes ({n / MiB:.1f} MiB)"
    return f"{n} bytes"
