"""Wire types of ``/tokenize`` and ``/detokenize`` (also under ``/v1``), as SGLang's and
vLLM's servers take them: a prompt (or several) or chat messages in, token ids out, and
back."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from omni_sglang.protocol.openai import (
    ChatCompletionRequest,
    ChatMessage,
    NamedToolChoice,
    ToolDef,
    _Strict,
)

#: The chat fields a ``messages`` tokenize request may carry: those that shape the prompt.
CHAT_FIELDS = (
    "messages",
    "tools",
    "tool_choice",
    "reasoning_effort",
    "chat_template_kwargs",
    "media_io_kwargs",
    "mm_processor_kwargs",
    "add_generation_prompt",
    "continue_final_message",
)


class TokenizeRequest(_Strict):
    model: str | None = None
    prompt: str | list[str] | None = None
    messages: list[ChatMessage] | None = Field(None, min_length=1)
    #: Only with ``prompt``: chat prompts are rendered as for a chat completion.
    add_special_tokens: bool = True
    return_token_strs: bool = False
    tools: list[ToolDef] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    media_io_kwargs: dict[str, Any] | None = None
    mm_processor_kwargs: dict[str, Any] | None = None
    add_generation_prompt: bool = True
    continue_final_message: bool = False

    @model_validator(mode="after")
    def _one_input(self) -> TokenizeRequest:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("send exactly one of 'prompt' or 'messages'")
        chat_only = sorted(
            name
            for name in CHAT_FIELDS
            if name != "messages" and name in self.model_fields_set and self.messages is None
        )
        if chat_only:
            raise ValueError(f"{', '.join(chat_only)} only go with 'messages'")
        if self.messages is not None and "add_special_tokens" in self.model_fields_set:
            raise ValueError(
                "'add_special_tokens' goes with 'prompt'; messages are tokenized as the "
                "chat template renders them"
            )
        return self

    def chat_request(self, model: str) -> ChatCompletionRequest:
        """The chat completion these messages would be, for rendering."""
        given = self.model_fields_set
        fields = {name: getattr(self, name) for name in CHAT_FIELDS if name in given}
        return ChatCompletionRequest.model_validate({**fields, "model": model})


class DetokenizeRequest(_Strict):
    model: str | None = None
    tokens: list[int] | list[list[int]] = Field(min_length=1)
    skip_special_tokens: bool = True
