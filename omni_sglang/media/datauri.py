"""``data:`` URIs (RFC 2397): base64 or percent-encoded, size-capped before decoding."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from omni_sglang.media.errors import MediaError, MediaLimitError
from omni_sglang.media.limits import describe_bytes

_WHITESPACE = re.compile(rb"\s+")


@dataclass(frozen=True)
class DataURI:
    #: Declared ``type/subtype``, lower case; None when the URI declares none.
    mime: str | None
    data: bytes


def decoded_size_estimate(payload_len: int) -> int:
    """Upper bound of the decoded size of ``payload_len`` base64 characters."""
    return payload_len // 4 * 3 + 3


def parse_data_uri(url: str, max_bytes: int) -> DataURI:
    if url[:5].lower() != "data:":
        raise MediaError("not a data: URI")
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise MediaError("data URI has no ',' between its header and its data")
    params = [p.strip() for p in header.split(";")]
    is_base64 = len(params) > 1 and params[-1].lower() == "base64"
    mime = params[0].lower() or None
    if mime is not None and "/" not in mime:
        raise MediaError(f"data URI media type {mime!r} is not of the form type/subtype")

    if is_base64:
        # Refuse before decoding, so an oversized upload costs no memory beyond the string.
        if decoded_size_estimate(len(payload)) - 3 > max_bytes:
            raise MediaLimitError(
                f"data URI holds about {describe_bytes(len(payload) * 3 // 4)}; the limit "
                f"for this kind of media is {describe_bytes(max_bytes)}"
            )
        data = _b64decode(payload, "data URI")
    else:
        data = unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise MediaLimitError(
            f"data URI holds {describe_bytes(len(data))}; the limit for this kind of media "
            f"is {describe_bytes(max_bytes)}"
        )
    if not data:
        raise MediaError("data URI is empty")
    return DataURI(mime, data)


def _b64decode(payload: str, what: str) -> bytes:
    try:
        raw = payload.encode("ascii")
    except UnicodeEncodeError as exc:
        raise MediaError(f"{what} base64 payload has non-ASCII characters") from exc
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:
        pass
    # Line-wrapped (MIME-style) or URL-safe base64 from some clients: accept both, but
    # only on this slow path so the common case makes no copy.
    cleaned = _WHITESPACE.sub(b"", raw)
    try:
        if b"-" in cleaned or b"_" in cleaned:
            return base64.b64decode(cleaned, altchars=b"-_", validate=True)
        return base64.b64decode(cleaned, validate=True)
    except binascii.Error as exc:
        raise MediaError(f"{what} base64 payload is not valid base64: {exc}") from exc


def decode_base64_payload(payload: str, max_bytes: int, what: str) -> bytes:
    """Bare base64 (OpenAI ``input_audio.data``), with the same cap and errors."""
    if decoded_size_estimate(len(payload)) - 3 > max_bytes:
        raise MediaLimitError(
            f"{what} holds about {describe_bytes(len(payload) * 3 // 4)}; the limit is "
            f"{describe_bytes(max_bytes)}"
        )
    data = _b64decode(payload, what)
    if not data:
        raise MediaError(f"{what} is empty")
    if len(data) > max_bytes:
        raise MediaLimitError(
            f"{what} holds {describe_bytes(len(data))}; the limit is {describe_bytes(max_bytes)}"
        )
    return data
