"""Errors of the media layer: always the client's fault, so always a 400.

A URL that cannot be fetched, bytes that are not the format they claim, a file that is
truncated: the client can fix each of them, and none of them may surface as a 500.
Messages say what was wrong and what is allowed.
"""

from __future__ import annotations

from omni_sglang.errors import ClientError


class MediaError(ClientError):
    """Media could not be fetched, recognised or decoded."""

    code = "invalid_media"


class MediaLimitError(MediaError):
    """Media is larger, longer or more numerous than the server allows."""

    code = "media_limit_exceeded"
