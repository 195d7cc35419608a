"""``/v1/audio/transcriptions`` and ``/v1/audio/translations`` through the ``openai``
SDK, on both engines: the Omni model hears each window (forced to say known words, so
the stitching and every response format can be checked exactly)."""

from __future__ import annotations

import base64
import io
import itertools
import json
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile
from openai import OpenAI

from omni_sglang.media import synth
from omni_sglang.media.audio_windows import split_at_quiet_points
from tests.conftest import TINY, Server

SAID = "Hello world."
RATE = 16_000


@pytest.fixture(scope="module")
def client(engine_server: Server) -> OpenAI:
    return OpenAI(base_url=engine_server.url + "/v1", api_key="x", max_retries=0)


@pytest.fixture(scope="module")
def say(force_tokens_processor: str, tok: Any) -> dict[str, Any]:
    """Form fields that make the model say ``SAID`` for every window."""
    params = {
        "force": tok(SAID, add_special_tokens=False).input_ids,
        "eos": tok.convert_tokens_to_ids("<|im_end|>"),
    }
    return {"custom_logit_processor": force_tokens_processor, "custom_params": json.dumps(params)}


def speech_like(seconds: float, pauses: list[float]) -> np.ndarray:
    """A tone, silent for 0.4 s from each of ``pauses`` (where a cut should land)."""
    t = np.arange(int(seconds * RATE)) / RATE
    samples = 0.3 * np.sin(2 * np.pi * 440 * t)
    for at in pauses:
        samples[int(at * RATE) : int((at + 0.4) * RATE)] = 0.0
    return samples.astype(np.float32)


def wav(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, RATE, format="WAV")
    return buffer.getvalue()


WAV = synth.audio_bytes("wav", 2.0)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac"])
def test_each_file_type(client: OpenAI, say: dict[str, Any], fmt: str) -> None:
    data = WAV if fmt == "wav" else synth.audio_bytes(fmt, 2.0)
    got = client.audio.transcriptions.create(model=TINY, file=(f"a.{fmt}", data), extra_body=say)
    assert got.text == SAID
    assert got.usage.output_tokens > 0 and got.usage.input_tokens > 25  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["wav", "mp3", "flac"])
def test_each_response_format(client: OpenAI, say: dict[str, Any], kind: str) -> None:
    data = WAV if kind == "wav" else synth.audio_bytes(kind, 2.0)

    def create(fmt: str) -> Any:
        return client.audio.transcriptions.create(
            model=TINY,
            file=(f"a.{kind}", data),
            response_format=fmt,
            language="en",
            extra_body=say,  # type: ignore[call-overload]
        )

    assert create("text").strip() == SAID
    verbose = create("verbose_json")
    assert (verbose.text, verbose.language, verbose.duration) == (SAID, "en", 2.0)
    (segment,) = verbose.segments
    assert (segment.start, segment.end, segment.text, segment.seek) == (0.0, 2.0, SAID, 0)
    assert len(segment.tokens) == create("json").usage.output_tokens
    assert (verbose.usage.type, verbose.usage.seconds) == ("duration", 2.0)  # type: ignore[union-attr]
    assert segment.avg_logprob == 0.0  # forced: every token certain
    assert create("srt") == f"1\n00:00:00,000 --> 00:00:02,000\n{SAID}\n"
    assert create("vtt") == f"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n{SAID}\n"


def test_streamed_text_is_the_whole(client: OpenAI, say: dict[str, Any]) -> None:
    events = list(
        client.audio.transcriptions.create(
            model=TINY, file=("a.wav", WAV), stream=True, extra_body=say
        )
    )
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    assert events[-1].type == "transcript.text.done" and len(deltas) > 1
    assert "".join(deltas) == events[-1].text == SAID


def test_long_audio_is_cut_at_pauses_and_stitched(client: OpenAI, say: dict[str, Any]) -> None:
    """70 s: windows of at most 30 s, each cut in the pause inside its last second, the
    segments contiguous, their texts joined in order (streamed alike)."""
    audio = wav(speech_like(70.0, pauses=[29.3, 58.5]))
    verbose = client.audio.transcriptions.create(
        model=TINY, file=("long.wav", audio), response_format="verbose_json", extra_body=say
    )
    spans = [(s.start, s.end) for s in verbose.segments or []]
    assert len(spans) == 3 and spans[0][0] == 0.0 and spans[-1][1] == 70.0
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert 29.3 <= spans[0][1] <= 29.7 and 58.5 <= spans[1][1] <= 58.9
    assert verbose.text == " ".join([SAID] * 3)
    events = list(
        client.audio.transcriptions.create(
            model=TINY, file=("long.wav", audio), stream=True, extra_body=say
        )
    )
    assert "".join(e.delta for e in events[:-1]) == events[-1].text == verbose.text
    srt = client.audio.transcriptions.create(
        model=TINY, file=("long.wav", audio), response_format="srt", extra_body=say
    )
    assert srt.count(SAID) == 3 and "\n3\n00:00:58," in srt


def test_translation(client: OpenAI, say: dict[str, Any]) -> None:
    got = client.audio.translations.create(
        model=TINY, file=("a.wav", WAV), response_format="verbose_json", extra_body=say
    )
    assert (got.text, got.task, got.language) == (SAID, "translate", "english")  # type: ignore[attr-defined]


def test_the_plugin_owns_the_prompt(engine_server: Server) -> None:
    """The window's prompt is the model plugin's: its tokens, the audio's, the template's
    add up to the input tokens of the same chat request."""
    from omni_sglang_nemotron.plugin import NemotronOmniPlugin

    prompt = NemotronOmniPlugin().transcription_prompt(
        translate=False, language=None, prompt="Names: Ada"
    )
    got = httpx.post(
        engine_server.url + "/v1/audio/transcriptions",
        files={"file": ("a.wav", WAV)},
        data={"model": TINY, "prompt": "Names: Ada"},
        timeout=180,
    )
    assert got.status_code == 200, got.text
    part = {
        "type": "input_audio",
        "input_audio": {"data": base64.b64encode(WAV).decode(), "format": "wav"},
    }
    chat = httpx.post(
        engine_server.url + "/v1/chat/completions/render",
        json={
            "model": TINY,
            "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}, part]}],
            "reasoning_effort": "none",
        },
        timeout=60,
    )
    assert chat.status_code == 200, chat.text
    assert got.json()["usage"]["input_tokens"] == chat.json()["count"]


def test_split_points_land_in_pauses() -> None:
    samples = speech_like(65.0, pauses=[29.5, 59.2])
    windows = split_at_quiet_points(samples, RATE, 30.0)
    assert [round(w.start, 1) for w in windows] == [0.0, 29.5, 59.2]
    assert sum(len(w.samples) for w in windows) == len(samples)
    assert all(w.end - w.start <= 30.0 for w in windows)
    silent = np.zeros(RATE * 61, dtype=np.float32)  # nowhere quieter: cut at a stride
    assert all(w.end - w.start <= 30.0 for w in split_at_quiet_points(silent, RATE, 30.0))


@pytest.mark.parametrize(
    ("data", "files", "status", "says"),
    [
        ({"model": TINY}, {"doc": ("a.txt", b"x")}, 400, "'file' field"),
        ({"model": TINY}, {"file": ("x.png", synth.image_bytes("PNG", (8, 8)))}, 400, "image"),
        ({"model": TINY}, {"file": ("x.wav", WAV[:200])}, 400, "audio"),
        ({"model": TINY, "response_format": "xml"}, "wav", 400, "response_format"),
        ({"model": TINY, "response_format": "srt", "stream": "true"}, "wav", 400, "cannot stream"),
        (
            {"model": TINY, "timestamp_granularities[]": "word"},
            "wav",
            400,
            "timestamp_granularities",
        ),
        ({"model": TINY, "temperature": "2"}, "wav", 400, "temperature"),
        ({"model": TINY, "chunking_strategy": "auto"}, "wav", 400, "chunking_strategy"),
        ({"model": "whisper-1"}, "wav", 404, "whisper-1"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_bad_uploads_are_4xx(
    engine_server: Server, data: dict[str, Any], files: Any, status: int, says: str
) -> None:
    upload = {"file": ("a.wav", WAV)} if files == "wav" else files
    got = httpx.post(
        engine_server.url + "/v1/audio/transcriptions", data=data, files=upload, timeout=60
    )
    assert got.status_code == status, got.text
    assert says in got.json()["error"]["message"], got.text


def test_a_json_body_is_refused(engine_server: Server) -> None:
    got = httpx.post(engine_server.url + "/v1/audio/translations", json={"model": TINY})
    assert got.status_code == 400 and "multipart/form-data" in got.json()["error"]["message"]


def test_an_upload_of_unknown_length_is_refused(engine_server: Server) -> None:
    def chunks() -> Any:
        yield b"--x\r\nContent-Disposition: form-data; name=file; filename=a.wav\r\n\r\n"
        yield WAV
        yield b"\r\n--x--\r\n"

    got = httpx.post(
        engine_server.url + "/v1/audio/transcriptions",
        content=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert got.status_code == 400 and "Content-Length" in got.json()["error"]["message"]
