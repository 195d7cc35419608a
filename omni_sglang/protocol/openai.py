"""Wire types of the OpenAI surface, with the NIM and SGLang extensions NIM accepts.

Validation lives here and only here: ranges, types and unknown fields are refused by
pydantic and reported as a 400 naming the field. Fields we accept but do not act on are
listed in ``IGNORED_FIELDS`` (they do not change the answer); fields whose meaning we
do not implement are refused by the adapter with a message, never dropped silently.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Accepted for client compatibility; they do not change what the model generates.
IGNORED_FIELDS = ("user", "metadata", "store", "service_tier", "parallel_tool_calls")


class _Strict(BaseModel):
    # strict: "1" is not a number and 1 is not true; a client that sends the wrong JSON
    # type gets told so instead of having it converted behind its back.
    model_config = ConfigDict(extra="forbid", strict=True)


class StreamOptions(_Strict):
    include_usage: bool = False
    continuous_usage_stats: bool = False


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class MediaURL(_Strict):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Strict):
    type: Literal["image_url"]
    image_url: MediaURL


class VideoPart(_Strict):
    type: Literal["video_url"]
    video_url: MediaURL


class AudioPart(_Strict):
    type: Literal["audio_url"]
    audio_url: MediaURL


class InputAudio(_Strict):
    data: str
    format: Literal["wav", "mp3", "flac"]


class InputAudioPart(_Strict):
    type: Literal["input_audio"]
    input_audio: InputAudio


ContentPart = Annotated[
    TextPart | ImagePart | VideoPart | AudioPart | InputAudioPart, Field(discriminator="type")
]


class FunctionCall(_Strict):
    name: str
    arguments: str


class ToolCallIn(_Strict):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    # Reasoning of an earlier assistant turn: NIM/vLLM call it ``reasoning``,
    # SGLang/DeepSeek clients ``reasoning_content``.
    reasoning: str | None = None
    reasoning_content: str | None = None

    @model_validator(mode="after")
    def _check_roles(self) -> ChatMessage:
        if self.role in ("system", "developer", "user") and self.content is None:
            raise ValueError(f"a {self.role} message needs 'content'")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs 'tool_call_id'")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry 'tool_calls'")
        if (
            self.role != "user"
            and isinstance(self.content, list)
            and any(part.type != "text" for part in self.content)
        ):
            raise ValueError(f"media parts are allowed in user messages only, not {self.role}")
        return self


class FunctionDef(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and value.get("type", "object") != "object":
            raise ValueError("function 'parameters' must be a JSON schema of type 'object'")
        return value


class ToolDef(_Strict):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(_Strict):
    name: str


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: NamedFunction


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class NvExt(_Strict):
    max_thinking_tokens: int | None = None


StopField = str | list[str] | None


class SamplingFields(_Strict):
    """Sampling fields shared by chat and text completions (OpenAI + SGLang extras)."""

    model: str
    n: int = Field(1, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=-1)
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    repetition_penalty: float | None = Field(None, gt=0.0, le=2.0)
    seed: int | None = None
    stop: StopField = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = False
    min_tokens: int = Field(0, ge=0)
    logit_bias: dict[str, float] | None = None
    skip_special_tokens: bool = True
    no_stop_trim: bool = False
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    # SGLang extensions: a serialized ``CustomLogitProcessor`` and its parameters. Off
    # unless the server enables them (deserializing one runs the client's code).
    custom_logit_processor: str | None = None
    custom_params: dict[str, Any] | None = None

    @field_validator("top_k")
    @classmethod
    def _top_k(cls, value: int | None) -> int | None:
        if value == 0:
            raise ValueError("top_k must be -1 (disabled) or a positive integer")
        return value

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: StopField) -> StopField:
        items = [value] if isinstance(value, str) else (value or [])
        if any(item == "" for item in items):
            raise ValueError("stop sequences must be non-empty strings")
        return value

    @field_validator("logit_bias")
    @classmethod
    def _logit_bias(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for key, bias in (value or {}).items():
            if not key.lstrip("-").isdigit():
                raise ValueError(f"logit_bias keys are token ids; got {key!r}")
            if not -100.0 <= bias <= 100.0:
                raise ValueError(f"logit_bias values must be within [-100, 100]; got {bias}")
        return value

    @model_validator(mode="after")
    def _stream_options_need_stream(self) -> SamplingFields:
        if self.stream_options is not None and not self.stream:
            raise ValueError("'stream_options' is only allowed when 'stream' is true")
        return self

    def stop_list(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    tools: list[ToolDef] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    # NIM / vLLM / SGLang extensions
    chat_template_kwargs: dict[str, Any] | None = None
    media_io_kwargs: dict[str, Any] | None = None
    mm_processor_kwargs: dict[str, Any] | None = None
    thinking_token_budget: int | None = None
    reasoning_budget: int | None = None
    nvext: NvExt | None = None
    add_generation_prompt: bool = True
    continue_final_message: bool = False

    @model_validator(mode="after")
    def _check_chat(self) -> ChatCompletionRequest:
        if self.top_logprobs and not self.logprobs:
            raise ValueError("'top_logprobs' requires 'logprobs': true")
        if self.continue_final_message and self.add_generation_prompt:
            raise ValueError(
                "'continue_final_message' needs 'add_generation_prompt': false "
                "(the last assistant turn is continued, not a new one opened)"
            )
        if self.continue_final_message and self.messages[-1].role != "assistant":
            raise ValueError("'continue_final_message' needs the last message to be assistant")
        return self


class CompletionRequest(SamplingFields):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(16, ge=1)
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=5)
    suffix: str | None = None
    best_of: int | None = Field(None, ge=1)

    @field_validator("prompt")
    @classmethod
    def _non_empty(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("'prompt' must not be empty")
        if isinstance(value, list) and any(isinstance(p, list) and not p for p in value):
            raise ValueError("token-id prompts must not be empty")
        return value
