"""``/v1/audio/transcriptions`` and ``/v1/audio/translations``, served by the Omni model
itself: the upload is decoded under the chat media limits, cut at quiet points into
windows the model hears whole (its modality plugin says how long, and owns the prompt),
and each window runs as a chat request with the audio beside that prompt -- through the
same media path, modality plugin and engine as any chat audio."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from omni_sglang.api.io import (
    json_response,
    primed,
    sse_response,
    unless_disconnected,
    validated,
)
from omni_sglang.api.routes_openai import server_state, start_chat
from omni_sglang.errors import InvalidRequestError, PayloadTooLargeError, UnsupportedFieldError
from omni_sglang.media.audio import DecodedAudio
from omni_sglang.media.audio_windows import AudioWindow, split_at_quiet_points
from omni_sglang.output.transcripts import (
    Segment,
    TranscriptJoiner,
    full_text,
    subtitles,
    usage,
    verbose_json,
)
from omni_sglang.plugin_api import ModalityProcessorPlugin
from omni_sglang.protocol.audio import TranscriptionForm, TranslationForm
from omni_sglang.protocol.openai import ChatCompletionRequest
from omni_sglang.state import ServerState

router = APIRouter()

_LISTS = ("timestamp_granularities[]",)


async def _read_form(
    request: Request, state: ServerState, form_type: type[TranslationForm]
) -> tuple[TranslationForm, bytes]:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequestError("send the audio as multipart/form-data with a 'file' field")
    cap = state.config.max_request_bytes
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        # The form parser spools files to disk as they come: without a declared length
        # an upload could be any size before a limit was noticed.
        raise InvalidRequestError("an audio upload needs a Content-Length header")
    if int(declared) > cap:
        raise PayloadTooLargeError(f"request body exceeds the {cap}-byte limit")
    try:
        form = await request.form(max_files=1, max_fields=32)
    except Exception as exc:  # starlette's MultiPartException and parser errors
        raise InvalidRequestError(f"the multipart body could not be read: {exc}") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidRequestError("the form needs a 'file' field holding the audio", "file")
    fields: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key == "file":
            continue
        if not isinstance(value, str):
            raise InvalidRequestError(f"form field {key!r} must be text, not a file", key)
        fields[key] = form.getlist(key) if key in _LISTS else value
    return validated(form_type, fields), await upload.read()


def _transcriber(state: ServerState) -> ModalityProcessorPlugin:
    plugin = state.plugins.modality
    # A plugin offers transcription by declaring both its window and its prompt.
    if (
        plugin is None
        or plugin.transcription_window_seconds is None
        or type(plugin).transcription_prompt is ModalityProcessorPlugin.transcription_prompt
    ):
        raise UnsupportedFieldError(
            "the served model's plugin offers no transcription (its modality processor "
            "declares no audio window)",
            "model",
        )
    return plugin


def _window_request(
    form: TranslationForm, prompt: str, window: AudioWindow, rate: int, state: ServerState
) -> ChatCompletionRequest:
    audio = base64.b64encode(window.wav(rate)).decode()
    content = [
        {"type": "text", "text": prompt},
        {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
    ]
    body: dict[str, Any] = {
        "model": form.model,
        "messages": [{"role": "user", "content": content}],
        "temperature": form.temperature,
        "logprobs": True,  # for verbose_json's avg_logprob
        "stream": True,
        "custom_logit_processor": form.custom_logit_processor,
        "custom_params": form.custom_params,
    }
    if state.plugins.reasoning is not None:
        body["reasoning_effort"] = "none"  # a transcript, not a thought
    return validated(ChatCompletionRequest, {k: v for k, v in body.items() if v is not None})


async def _transcribe(
    state: ServerState,
    form: TranslationForm,
    audio: DecodedAudio,
    translate: bool,
    segments: list[Segment],
) -> AsyncIterator[tuple[int, str]]:
    """Each window in turn, one admission slot each, its ``Segment`` appended to
    ``segments`` and filled in as its text comes: yields (window, new text)."""
    plugin = _transcriber(state)
    language = getattr(form, "language", None)
    prompt = plugin.transcription_prompt(translate=translate, language=language, prompt=form.prompt)
    windows = split_at_quiet_points(
        audio.samples, audio.sample_rate, plugin.transcription_window_seconds or 0.0
    )
    for index, window in enumerate(windows):
        segment = Segment(window.start, window.end)
        segments.append(segment)
        chat = _window_request(form, prompt, window, audio.sample_rate, state)
        ticket = state.admission.admit()
        try:
            asm, outputs, _ = await start_chat(chat, state, ticket)
        except BaseException:
            ticket.release()
            raise
        async for out in outputs:
            delta, _ = asm.feed(out)
            segment.text += delta.content
            segment.token_ids += out.token_ids
            segment.logprobs += [entry[0] for entry in out.output_token_logprobs or []]
            segment.input_tokens = out.prompt_tokens
            yield index, delta.content


async def _serve(request: Request, form_type: type[TranslationForm], translate: bool) -> Response:
    state = server_state(request)
    form, data = await _read_form(request, state, form_type)
    _transcriber(state)
    loaded = await state.media_loader.load_audio_file(data)
    segments: list[Segment] = []
    pieces = _transcribe(state, form, loaded.data, translate, segments)
    if form.stream:
        # primed: a bad request (unknown model, ...) is a 4xx, not an event after the 200
        return sse_response(await primed(_events(pieces, segments)), typed=True)

    async def drain() -> None:
        async for _ in pieces:
            pass

    await unless_disconnected(request, drain())
    task = "translate" if translate else "transcribe"
    if form.response_format == "verbose_json":
        language = getattr(form, "language", None) or ("english" if translate else None)
        return json_response(verbose_json(segments, task, language, form.temperature))
    if form.response_format == "json":
        return json_response({"text": full_text(segments), "usage": usage(segments)})
    if form.response_format == "text":
        return _plain(full_text(segments))
    return _plain(subtitles(segments, form.response_format))


def _plain(text: str) -> Response:
    return Response(text, media_type="text/plain; charset=utf-8")


async def _events(
    pieces: AsyncIterator[tuple[int, str]], segments: list[Segment]
) -> AsyncIterator[dict[str, Any]]:
    joiner = TranscriptJoiner()
    async for window, piece in pieces:
        delta = joiner.feed(window, piece)
        if delta:
            yield {"type": "transcript.text.delta", "delta": delta}
    yield {"type": "transcript.text.done", "text": joiner.text, "usage": usage(segments)}


@router.post("/v1/audio/transcriptions")
async def transcriptions(request: Request) -> Response:
    return await _serve(request, TranscriptionForm, translate=False)


@router.post("/v1/audio/translations")
async def translations(request: Request) -> Response:
    return await _serve(request, TranslationForm, translate=True)
