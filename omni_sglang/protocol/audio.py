"""Wire types of ``/v1/audio/transcriptions`` and ``/v1/audio/translations``: OpenAI's
multipart form fields (each a string on the wire, so converted, not strict)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Json, model_validator

ResponseFormat = Literal["json", "text", "verbose_json", "srt", "vtt"]


class TranslationForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    prompt: str | None = None
    response_format: ResponseFormat = "json"
    # OpenAI's range and default: 0 is its "as sure as the model can be".
    temperature: float = Field(0.0, ge=0.0, le=1.0)
    stream: bool = False
    #: ``segment`` timestamps are the windows' (the model writes none of its own).
    timestamp_granularities: list[Literal["segment"]] | None = Field(
        None, alias="timestamp_granularities[]"
    )
    # SGLang's extensions, gated by the server as on chat (tests force known words).
    custom_logit_processor: str | None = None
    custom_params: Json[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _stream_formats(self) -> TranslationForm:
        if self.stream and self.response_format not in ("json", "text"):
            raise ValueError(
                f"'stream' gives text deltas; response_format {self.response_format!r} "
                "cannot stream (use json or text)"
            )
        return self


class TranscriptionForm(TranslationForm):
    language: str | None = Field(None, max_length=64)
