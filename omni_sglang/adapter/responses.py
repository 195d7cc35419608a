"""A Responses request -> the chat request it means, so ``/v1/responses`` runs the chat
pipeline (templates, media, tools, grammar, reasoning) unchanged: one pipeline, two
wire shapes. Input items become chat messages; a stored conversation named by
``previous_response_id`` goes first, as chat messages already."""

from __future__ import annotations

import mimetypes
from typing import Any

from omni_sglang.errors import InvalidRequestError, UnsupportedFieldError
from omni_sglang.protocol.responses import (
    FunctionCallItem,
    FunctionCallOutputItem,
    InputAudio,
    InputFile,
    InputImage,
    Item,
    MessageItem,
    Part,
    ReasoningItem,
    ResponsesRequest,
)

_MEDIA_PART = {"image": "image_url", "video": "video_url", "audio": "audio_url"}


def _file_kind(part: InputFile) -> str:
    """What an ``input_file`` holds: from its data URI's media type, else its name."""
    source = part.file_data or part.file_url or ""
    if source.startswith("data:"):
        mime = source[5:].split(";", 1)[0].split(",", 1)[0]
    else:
        mime = mimetypes.guess_type(part.filename or source)[0] or ""
    kind = mime.split("/", 1)[0]
    if kind not in _MEDIA_PART:
        raise UnsupportedFieldError(
            f"input_file of type {mime or 'unknown'!r}: this model takes image, video and "
            "audio files (give 'file_data' as a data: URI with its media type, or a "
            "'filename'/'file_url' with an extension)",
            "input",
        )
    return kind


def _no_file_ids(part: InputImage | InputFile) -> None:
    if part.file_id is not None:
        raise UnsupportedFieldError(
            "'file_id': this server has no Files API; send the file inline "
            "('image_url' or 'file_data' as a data: URI) or by URL",
            "input",
        )


def _chat_part(part: Part) -> dict[str, Any]:
    if part.type in ("input_text", "output_text"):
        return {"type": "text", "text": part.text}
    if part.type == "refusal":
        return {"type": "text", "text": part.refusal}
    if isinstance(part, InputAudio):
        return {"type": "input_audio", "input_audio": part.input_audio.model_dump()}
    if isinstance(part, InputImage):
        _no_file_ids(part)
        if not part.image_url:
            raise InvalidRequestError("an input_image needs 'image_url'", "input")
        url: dict[str, Any] = {"url": part.image_url}
        if part.detail:
            url["detail"] = part.detail
        return {"type": "image_url", "image_url": url}
    assert isinstance(part, InputFile)
    _no_file_ids(part)
    source = part.file_data or part.file_url
    if not source:
        raise InvalidRequestError("an input_file needs 'file_data' or 'file_url'", "input")
    if part.file_data and not part.file_data.startswith("data:"):
        raise InvalidRequestError("'file_data' must be a data: URI (data:<type>;base64,...)")
    kind = _MEDIA_PART[_file_kind(part)]
    return {"type": kind, kind: {"url": source}}


def _content(content: str | list[Part]) -> str | list[dict[str, Any]]:
    return content if isinstance(content, str) else [_chat_part(p) for p in content]


def _text_only(content: str | list[Part], what: str) -> str:
    parts = _content(content)
    if isinstance(parts, str):
        return parts
    if any(p["type"] != "text" for p in parts):
        raise UnsupportedFieldError(f"{what} takes text parts only", "input")
    return "".join(p["text"] for p in parts)


def input_messages(items: str | list[Item]) -> list[dict[str, Any]]:
    """The input items as chat messages: a function call joins the assistant turn
    before it, a reasoning item goes with the assistant turn after it."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    messages: list[dict[str, Any]] = []
    reasoning: str | None = None

    def assistant_turn() -> dict[str, Any]:
        nonlocal reasoning
        last = messages[-1] if messages else None
        if last is None or last["role"] != "assistant" or reasoning is not None:
            last = {"role": "assistant", "content": None}
            messages.append(last)
        if reasoning is not None:
            last["reasoning_content"], reasoning = reasoning, None
        return last

    for item in items:
        if isinstance(item, ReasoningItem):
            parts = item.content or item.summary
            reasoning = (reasoning or "") + "".join(p.text for p in parts)
        elif isinstance(item, MessageItem) and item.role == "assistant":
            turn = assistant_turn()
            text = _text_only(item.content, "an assistant message")
            turn["content"] = (turn["content"] or "") + text
        elif isinstance(item, MessageItem):
            messages.append({"role": item.role, "content": _content(item.content)})
        elif isinstance(item, FunctionCallItem):
            call = {"name": item.name, "arguments": item.arguments}
            turn = assistant_turn()
            turn.setdefault("tool_calls", []).append(
                {"id": item.call_id, "type": "function", "function": call}
            )
        elif isinstance(item, FunctionCallOutputItem):
            output = _text_only(item.output, "a function_call_output")
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": output})
    return messages


def _response_format(req: ResponsesRequest) -> dict[str, Any] | None:
    fmt = req.text.format if req.text else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    schema = {"name": fmt.name, "schema": fmt.schema_, "strict": fmt.strict}
    if fmt.description:
        schema["description"] = fmt.description
    return {"type": "json_schema", "json_schema": schema}


def chat_body(req: ResponsesRequest, conversation: list[dict[str, Any]]) -> dict[str, Any]:
    """The chat request body this Responses request means. ``conversation``: the chat
    messages so far (``previous_response_id``'s, then this ``input``'s); the
    ``instructions`` go first, for this request only (as OpenAI, which carries an earlier
    response's instructions over to no later one)."""
    system = [{"role": "system", "content": req.instructions}] if req.instructions else []
    body: dict[str, Any] = {
        "model": req.model,
        "messages": [*system, *conversation],
        "stream": True,  # the route assembles a Response from the chat stream, always
        "stream_options": {"include_usage": True},
    }
    if req.tools:
        body["tools"] = [
            {"type": "function", "function": t.model_dump(exclude={"type"}, exclude_none=True)}
            for t in req.tools
        ]
    if isinstance(req.tool_choice, str):
        body["tool_choice"] = req.tool_choice
    elif req.tool_choice is not None:
        body["tool_choice"] = {"type": "function", "function": {"name": req.tool_choice.name}}
    logprobs = req.top_logprobs is not None or "message.output_text.logprobs" in (req.include or [])
    extras = {
        "max_completion_tokens": req.max_output_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "parallel_tool_calls": req.parallel_tool_calls,
        "reasoning_effort": req.reasoning.effort if req.reasoning else None,
        "response_format": _response_format(req),
        "logprobs": logprobs or None,
        "top_logprobs": req.top_logprobs if logprobs else None,
        "user": req.user,
        "metadata": req.metadata,
        "chat_template_kwargs": req.chat_template_kwargs,
        "media_io_kwargs": req.media_io_kwargs,
        "mm_processor_kwargs": req.mm_processor_kwargs,
        "thinking_token_budget": req.thinking_token_budget,
        "custom_logit_processor": req.custom_logit_processor,
        "custom_params": req.custom_params,
    }
    body.update({k: v for k, v in extras.items() if v is not None})
    return body
