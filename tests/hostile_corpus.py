"""The hostile payloads of tests/test_hostile.py: builders and the case lists."""

from __future__ import annotations

import base64
import functools
import io
import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from omni_sglang.media import synth
from tests.conftest import TINY

ERROR_KEYS = {"message", "type", "param", "code"}
USER = [{"role": "user", "content": "Hi"}]
MiB = 1024 * 1024


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": TINY, "messages": USER, "max_tokens": 2, **fields}


def raw(text: bytes) -> bytes:
    """A chat body with ``text`` spliced in as raw bytes (for what json.dumps won't write)."""
    return b'{"model": "' + TINY.encode() + b'", "max_tokens": 2, ' + text + b"}"


# -- media that lies ------------------------------------------------------------------------


def data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def with_media(kind: str, url: str, **fields: Any) -> dict[str, Any]:
    parts = [{"type": "text", "text": "What is this?"}, {"type": kind, kind: {"url": url}}]
    return chat(messages=[{"role": "user", "content": parts}], **fields)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png(width: int, height: int, idat: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


@functools.cache
def png_bomb() -> bytes:
    """A real decompression bomb: 8000x8000 black pixels (192 MB decoded) in ~190 KB."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (8000 * 3 + 1)
    return png(8000, 8000, b"".join(packer.compress(row) for _ in range(8000)) + packer.flush())


def gif_header(width: int, height: int) -> bytes:
    size = struct.pack("<HH", width, height)
    return (
        b"GIF89a" + size + b"\x00\x00\x00" + b",\x00\x00\x00\x00" + size + b"\x00\x02\x02D\x01\x00;"
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header (SOF0) is rewritten to claim a huge size."""
    real = synth.image_bytes("JPEG", (16, 16))
    sof = real.index(b"\xff\xc0")
    return real[: sof + 5] + struct.pack(">HH", height, width) + real[sof + 9 :]


def webp_canvas(width: int, height: int) -> bytes:
    extended = b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", 10) + extended
    return b"RIFF" + struct.pack("<I", len(body)) + body


@functools.cache
def wav_minutes(minutes: float) -> bytes:
    import soundfile as sf

    out = io.BytesIO()
    sf.write(out, np.zeros(int(minutes * 60 * 8000), dtype=np.float32), 8000, format="WAV")
    return out.getvalue()


@functools.cache
def video() -> bytes:
    return synth.video_bytes(2.0, (64, 48), 10)


@functools.cache
def small_png() -> bytes:
    return synth.image_bytes("PNG", (32, 32))


# -- the corpus --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    body: Any  # a dict (sent as JSON) or bytes (sent as is), or a callable making one
    status: int = 400
    fragment: str = ""  # expected in message or param (lower case)
    path: str = "/v1/chat/completions"

    def payload(self) -> Any:
        return self.body() if callable(self.body) else self.body


CHAT_CASES = [
    # -- JSON and encodings --
    Case("deep array body", b"[" * 100_000 + b"]" * 100_000, fragment="json"),
    Case("deep object body", b'{"a":' * 100_000 + b"1" + b"}" * 100_000, fragment="json"),
    Case("deep nesting in a field", raw(b'"stop": ' + b"[" * 100_000 + b"]" * 100_000)),
    Case(
        "deep nesting as content",
        raw(b'"messages": [{"role": "user", "content": ' + b"[" * 1000 + b"]" * 1000 + b"}]"),
    ),
    Case(
        "invalid UTF-8 in content", raw(b'"messages": [{"role": "user", "content": "a\xc3\x28b"}]')
    ),
    Case("overlong UTF-8", raw(b'"messages": [{"role": "user", "content": "\xc0\xaf"}]')),
    Case("lone continuation bytes", raw(b'"messages": [{"role": "user", "content": "\x80\x80"}]')),
    Case(
        "invalid UTF-8 in a key", raw(b'"\xff": 1, "messages": [{"role": "user", "content": "x"}]')
    ),
    Case("lone surrogate escape", raw(b'"messages": [{"role": "user", "content": "a\\ud800b"}]')),
    Case("UTF-16 body", json.dumps(chat()).encode("utf-16"), fragment="json"),
    Case("NaN", raw(b'"temperature": NaN, "messages": []'), fragment="json"),
    Case("nan lower case", raw(b'"temperature": nan, "messages": []'), fragment="json"),
    Case("Infinity", raw(b'"temperature": Infinity, "messages": []'), fragment="json"),
    Case("-Infinity", raw(b'"temperature": -Infinity, "messages": []'), fragment="json"),
    Case("1e999 overflows to inf", raw(b'"temperature": 1e999, "messages": []'), fragment="json"),
    Case("5000-digit integer", raw(b'"n": ' + b"9" * 5000 + b', "messages": []'), fragment="json"),
    Case("trailing garbage", json.dumps(chat()).encode() + b"garbage", fragment="json"),
    Case("two documents", json.dumps(chat()).encode() * 2, fragment="json"),
    Case("just null", b"null", fragment="object"),
    Case("a bare string", b'"hello"', fragment="object"),
    # -- enormous numbers and collections --
    Case("n 1e6", chat(n=10**6), fragment="n"),
    Case("n 2**63", chat(n=2**63), fragment="n"),
    Case("n beyond int64", chat(n=2**70), fragment="n"),
    Case("max_tokens 2**62", chat(max_tokens=2**62), fragment="context"),
    Case("max_tokens beyond int64", chat(max_tokens=10**30), fragment="max_tokens"),
    Case("max_completion_tokens 2**62", chat(max_completion_tokens=2**62), fragment="context"),
    Case("min_tokens 1e9", chat(min_tokens=10**9), fragment="min_tokens"),
    Case("seed beyond int64", chat(seed=2**64), fragment="seed"),
    Case("thinking budget beyond int64", chat(thinking_token_budget=10**30), fragment="budget"),
    Case(
        "10,000 messages",
        chat(messages=[{"role": "user", "content": ""}] * 10_000),
        fragment="context",
    ),
    Case(
        "100,000 content parts",
        chat(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}] * 100_000}]),
        fragment="context",
    ),
    Case(
        "10,000 tools",
        chat(tools=[{"type": "function", "function": {"name": f"f{i}"}} for i in range(10_000)]),
        fragment="context",
    ),
    Case("17 stop strings", chat(stop=["a"] * 17), fragment="stop"),
    Case("100 stop strings of 100 KB", chat(stop=["x" * 100_000] * 100), fragment="stop"),
    Case(
        "prompt beyond context",
        chat(messages=[{"role": "user", "content": "Paris " * 20_000}]),
        fragment="context",
    ),
    # -- media that lies about its type or size --
    Case(
        "PNG bytes labelled JPEG",
        lambda: with_media("image_url", data_uri("image/jpeg", small_png())),
        fragment="png",
    ),
    Case(
        "video bytes as an image",
        lambda: with_media("image_url", data_uri("image/png", video())),
        fragment="mp4",
    ),
    Case(
        "image bytes as a video",
        lambda: with_media("video_url", data_uri("video/mp4", small_png())),
        fragment="png",
    ),
    Case(
        "image bytes as audio",
        lambda: with_media("audio_url", data_uri("audio/wav", small_png())),
        fragment="png",
    ),
    Case(
        "video bytes as audio",
        lambda: with_media("audio_url", data_uri("audio/wav", video())),
        fragment="mp4",
    ),
    Case(
        "PNG as input_audio",
        lambda: chat(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "input_audio",
                            "input_audio": {
                                "data": base64.b64encode(small_png()).decode(),
                                "format": "wav",
                            },
                        }
                    ],
                }
            ]
        ),
        fragment="png",
    ),
    Case(
        "text bytes as an image",
        with_media("image_url", data_uri("image/png", b"hello world")),
        fragment="format",
    ),
    Case(
        "HTML labelled PNG",
        with_media("image_url", data_uri("image/png", b"<html><script>x</script></html>")),
    ),
    Case("not base64", with_media("image_url", "data:image/png;base64,!!!!"), fragment="base64"),
    Case("empty data URI", with_media("image_url", "data:image/png;base64,")),
    Case(
        "truncated PNG",
        lambda: with_media("image_url", data_uri("image/png", small_png()[:60])),
        fragment="truncated",
    ),
    Case(
        "truncated MP4",
        lambda: with_media("video_url", data_uri("video/mp4", video()[: len(video()) // 2])),
    ),
    Case(
        "PNG declaring 100000x100000",
        with_media(
            "image_url", data_uri("image/png", png(100_000, 100_000, zlib.compress(b"\x00" * 100)))
        ),
        fragment="pixels",
    ),
    Case(
        "PNG bomb 8000x8000",
        lambda: with_media("image_url", data_uri("image/png", png_bomb())),
        fragment="pixels",
    ),
    Case(
        "GIF declaring 65535x65535",
        with_media("image_url", data_uri("image/gif", gif_header(65535, 65535))),
        fragment="pixels",
    ),
    Case(
        "JPEG declaring 65500x65500",
        lambda: with_media("image_url", data_uri("image/jpeg", jpeg_claiming(65500, 65500))),
        fragment="pixels",
    ),
    Case(
        "WebP canvas 16384x16384",
        with_media("image_url", data_uri("image/webp", webp_canvas(16384, 16384))),
        fragment="pixels",
    ),
    Case(
        "image over 16 MiB",
        lambda: with_media(
            "image_url", data_uri("image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (17 * MiB))
        ),
        fragment="limit",
    ),
    Case(
        "11 minutes of audio",
        lambda: with_media("audio_url", data_uri("audio/wav", wav_minutes(11))),
        fragment="limit",
    ),
    Case(
        "17 images",
        lambda: chat(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image_url",
                            "image_url": {"url": data_uri("image/png", small_png())},
                        }
                    ]
                    * 17,
                }
            ]
        ),
        fragment="16",
    ),
    Case(
        "10,000 frames",
        lambda: with_media(
            "video_url",
            data_uri("video/mp4", video()),
            media_io_kwargs={"video": {"num_frames": 10_000}},
        ),
        fragment="128",
    ),
    Case(
        "10,000 frames, fps unset",
        lambda: with_media(
            "video_url",
            data_uri("video/mp4", video()),
            media_io_kwargs={"video": {"num_frames": 10_000, "fps": -1}},
        ),
        fragment="128",
    ),
    Case(
        "fps not a number",
        lambda: with_media(
            "video_url", data_uri("video/mp4", video()), media_io_kwargs={"video": {"fps": "fast"}}
        ),
        fragment="fps",
    ),
    Case(
        "pruning rate 5",
        lambda: with_media(
            "video_url",
            data_uri("video/mp4", video()),
            mm_processor_kwargs={"video_pruning_rate": 5},
        ),
        fragment="video_pruning_rate",
    ),
    Case(
        "media URL to loopback",
        with_media("image_url", "http://127.0.0.1:9/x.png"),
        fragment="address",
    ),
    Case("file:// URL", with_media("image_url", "file:///etc/passwd"), fragment="file"),
    Case("gopher:// URL", with_media("image_url", "gopher://example.com/x"), fragment="gopher"),
    # -- schemas that recurse --
    Case(
        "json_schema with a dangling $ref",
        chat(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"$ref": "#/nope"}},
            }
        ),
        fragment="json_schema",
    ),
    Case(
        "tool parameters of type string",
        chat(
            tools=[
                {"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}
            ]
        ),
        fragment="object",
    ),
]

OTHER_CASES = [
    Case(
        "completions: token id beyond vocab",
        {"model": TINY, "prompt": [2**40]},
        path="/v1/completions",
        fragment="token",
    ),
    Case(
        "completions: 65 prompts",
        {"model": TINY, "prompt": ["a"] * 65},
        path="/v1/completions",
        fragment="64",
    ),
    Case(
        "completions: 64 prompts over context",
        {"model": TINY, "prompt": [[1] * 17_000] * 64},
        path="/v1/completions",
        fragment="context",
    ),
    Case(
        "completions: n 2**63",
        {"model": TINY, "prompt": "a", "n": 2**63},
        path="/v1/completions",
        fragment="n",
    ),
    Case("generate: 257 prompts", {"text": ["a"] * 257}, path="/generate", fragment="256"),
    Case("generate: negative token id", {"input_ids": [-1]}, path="/generate", fragment="token"),
    Case("generate: empty token list", {"input_ids": [[]]}, path="/generate", fragment="empty"),
    Case(
        "generate: bad regex",
        {"text": "a", "sampling_params": {"regex": "("}},
        path="/generate",
        fragment="regex",
    ),
    # A list where one prompt takes one value: 500 (int() of a list raises TypeError).
    Case(
        "generate: logprob_start_len list for one prompt",
        {"text": "a", "logprob_start_len": [1, 2]},
        path="/generate",
    ),
    # max_n caps 'n' in the OpenAI routes only: /generate ran n=1000 samples (x256 prompts).
    Case(
        "generate: n 1000",
        {"text": "a", "sampling_params": {"n": 1000, "max_new_tokens": 1}},
        path="/generate",
        fragment="16",
    ),
    # SGLang refuses input + max_new_tokens beyond the context; we clamped silently.
    Case(
        "generate: max_new_tokens 1e9",
        {"text": "a", "sampling_params": {"max_new_tokens": 10**9}},
        path="/generate",
        fragment="context",
    ),
]


# -- running them ------------------------------------------------------------------------------
