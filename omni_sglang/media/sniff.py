"""What the bytes are, from their magic numbers (never from a file name or a claim).

The result is checked against what the client said: the MIME type of a ``data:`` URI,
and the part type (``image_url`` must hold an image). A mismatch is usually a client
bug worth reporting (a PNG labelled JPEG, an HTML error page saved as ``.mp4``), and
decoding the bytes as the wrong kind would only fail later with a worse message.
"""

from __future__ import annotations

from typing import NamedTuple

from omni_sglang.media.errors import MediaError


class MediaFormat(NamedTuple):
    kind: str  # "image" | "video" | "audio"
    format: str  # "jpeg", "png", "gif", "webp", "mp4", "mov", "webm", "mkv", "wav", ...

    @property
    def phrase(self) -> str:
        """'a JPEG', 'an MP4': for messages."""
        return _PHRASES[self.format]


_PHRASES = {
    "jpeg": "a JPEG",
    "png": "a PNG",
    "gif": "a GIF",
    "webp": "a WebP",
    "mp4": "an MP4",
    "mov": "a QuickTime MOV",
    "webm": "a WebM",
    "mkv": "a Matroska",
    "wav": "a WAV",
    "mp3": "an MP3",
    "flac": "a FLAC",
    "m4a": "an M4A",
}

SUPPORTED = {
    "image": "JPEG, PNG, GIF, WebP",
    "video": "MP4, MOV, WebM, MKV",
    "audio": "WAV, MP3, FLAC, M4A",
}

#: Declared MIME type -> the formats it may hold. MP4/MOV (ISO BMFF) and WebM/MKV
#: (Matroska) are the same containers, so either label is accepted for either.
MIME_FORMATS: dict[str, tuple[str, frozenset[str]]] = {
    "image/jpeg": ("image", frozenset({"jpeg"})),
    "image/jpg": ("image", frozenset({"jpeg"})),
    "image/pjpeg": ("image", frozenset({"jpeg"})),
    "image/png": ("image", frozenset({"png"})),
    "image/apng": ("image", frozenset({"png"})),
    "image/gif": ("image", frozenset({"gif"})),
    "image/webp": ("image", frozenset({"webp"})),
    "video/mp4": ("video", frozenset({"mp4", "mov"})),
    "video/x-m4v": ("video", frozenset({"mp4", "mov"})),
    "video/quicktime": ("video", frozenset({"mp4", "mov"})),
    "video/webm": ("video", frozenset({"webm", "mkv"})),
    "video/x-matroska": ("video", frozenset({"webm", "mkv"})),
    "audio/wav": ("audio", frozenset({"wav"})),
    "audio/x-wav": ("audio", frozenset({"wav"})),
    "audio/wave": ("audio", frozenset({"wav"})),
    "audio/vnd.wave": ("audio", frozenset({"wav"})),
    "audio/mpeg": ("audio", frozenset({"mp3"})),
    "audio/mp3": ("audio", frozenset({"mp3"})),
    "audio/mpeg3": ("audio", frozenset({"mp3"})),
    "audio/x-mpeg-3": ("audio", frozenset({"mp3"})),
    "audio/flac": ("audio", frozenset({"flac"})),
    "audio/x-flac": ("audio", frozenset({"flac"})),
    "audio/mp4": ("audio", frozenset({"m4a"})),
    "audio/m4a": ("audio", frozenset({"m4a"})),
    "audio/x-m4a": ("audio", frozenset({"m4a"})),
}

# ISO BMFF brands that are still images (HEIF/AVIF), or audio only.
_IMAGE_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"F4A ", b"F4B "}

# MPEG audio frame header: 11 sync bits, then version, layer, bitrate and rate fields.
_MP3_BITRATE_BAD = 0xF0
_MP3_RATE_BAD = 0x0C


def _is_mpeg_audio_frame(b: bytes) -> bool:
    if len(b) < 4 or b[0] != 0xFF or (b[1] & 0xE0) != 0xE0:
        return False
    version = (b[1] >> 3) & 0x3
    layer = (b[1] >> 1) & 0x3
    # layer 0 is reserved (and ADTS AAC uses it); version 1 is reserved.
    return (
        layer != 0
        and version != 1
        and (b[2] & _MP3_BITRATE_BAD) != _MP3_BITRATE_BAD
        and (b[2] & _MP3_RATE_BAD) != _MP3_RATE_BAD
    )


def _id3_size(data: bytes) -> int:
    """Length of a leading ID3v2 tag (header included); 0 when there is none."""
    if len(data) < 10 or data[:3] != b"ID3":
        return 0
    size = 0
    for byte in data[6:10]:  # "syncsafe" integer: 7 bits per byte
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if data[5] & 0x10 else 0
    return 10 + size + footer


def sniff(data: bytes) -> MediaFormat:
    """The kind and format of ``data``; MediaError when it is nothing we decode."""
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return MediaFormat("image", "jpeg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return MediaFormat("image", "png")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return MediaFormat("image", "gif")
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return MediaFormat("audio", "wav")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return MediaFormat("image", "webp")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            raise MediaError(
                "the media is a HEIF/AVIF image, which is not supported; supported "
                f"images: {SUPPORTED['image']}"
            )
        if brand in _AUDIO_BRANDS:
            return MediaFormat("audio", "m4a")
        return MediaFormat("video", "mov" if brand == b"qt  " else "mp4")
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return MediaFormat("video", "mov")  # old QuickTime files start without ftyp
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return MediaFormat("video", "webm" if b"webm" in head else "mkv")
    if head.startswith(b"fLaC"):
        return MediaFormat("audio", "flac")
    tag = _id3_size(data)
    if tag:
        after = data[tag : tag + 4]
        if after.startswith(b"fLaC"):
            return MediaFormat("audio", "flac")  # FLAC with a (non-standard) ID3 prefix
        # ID3 is MP3's tag in practice; the decoder judges whether frames follow.
        return MediaFormat("audio", "mp3")
    if _is_mpeg_audio_frame(head):
        return MediaFormat("audio", "mp3")
    raise MediaError(_unknown_message(head))


def _unknown_message(head: bytes) -> str:
    supported = "; ".join(f"{k}: {v}" for k, v in SUPPORTED.items())
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml", b"{", b"<")):
        what = "text (an HTML, XML or JSON page, maybe an error page from the media host)"
    elif head.startswith(b"%PDF"):
        what = "a PDF document"
    elif head.startswith(b"BM"):
        what = "a BMP image"
    elif head[:4] in (b"II*\x00", b"MM\x00*"):
        what = "a TIFF image"
    elif head.startswith(b"OggS"):
        what = "an Ogg file"
    elif not head:
        what = "empty"
    else:
        what = f"not a recognised media format (first bytes {head[:8].hex(' ')})"
    return f"the media bytes are {what}; supported formats are {supported}"


def check_declared_mime(mime: str | None, fmt: MediaFormat) -> None:
    """A ``data:`` URI's declared type must agree with what the bytes are."""
    if mime is None or mime in ("application/octet-stream", "binary/octet-stream"):
        return
    known = MIME_FORMATS.get(mime)
    if known is not None:
        if fmt.format in known[1]:
            return
    else:
        major = mime.split("/", 1)[0]
        if major not in ("image", "video", "audio") or major == fmt.kind:
            return  # an unlisted subtype of the right kind: trust the bytes
    raise MediaError(f"data URI says {mime} but the bytes are {fmt.phrase}")


_NOUNS = {"image": "an image", "video": "a video", "audio": "audio"}


def check_modality(expected: str, fmt: MediaFormat, part: str | None = None) -> None:
    """The part type (image_url, video_url, audio_url, input_audio) must match the bytes."""
    if fmt.kind == expected:
        return
    where = f"the {part} part" if part else f"{expected} media"
    raise MediaError(
        f"{where} must hold {_NOUNS[expected]}, but the bytes are {fmt.phrase} {fmt.kind}; "
        f"supported {expected} formats: {SUPPORTED[expected]}"
    )
