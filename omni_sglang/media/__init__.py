"""The media layer: fetch, recognise, check and decode images, videos and audio.

Entry point: ``MediaLoader.load(modality, url, options)``. Everything a client can get
wrong surfaces as ``MediaError`` / ``MediaLimitError`` (HTTP 400).
"""

from omni_sglang.media.audio import DecodedAudio
from omni_sglang.media.cache import MediaCache
from omni_sglang.media.errors import MediaError, MediaLimitError
from omni_sglang.media.fetch import FetchPolicy, load_bytes
from omni_sglang.media.limits import MediaLimits
from omni_sglang.media.loader import LoadedMedia, MediaLoader
from omni_sglang.media.sniff import MediaFormat, sniff
from omni_sglang.media.video import DecodedVideo

__all__ = [
    "DecodedAudio",
    "DecodedVideo",
    "FetchPolicy",
    "LoadedMedia",
    "MediaCache",
    "MediaError",
    "MediaFormat",
    "MediaLimitError",
    "MediaLimits",
    "MediaLoader",
    "load_bytes",
    "sniff",
]
