"""Messages -> prompt text with the tokenizer's own chat template."""

from __future__ import annotations

import json
from typing import Any

from omni_sglang.errors import InvalidRequestError
from omni_sglang.protocol.openai import ChatCompletionRequest, ChatMessage

#: Template variables the server sets itself; a client may not override them.
RESERVED_TEMPLATE_KWARGS = frozenset(
    {
        "messages",
        "tools",
        "documents",
        "add_generation_prompt",
        "continue_final_message",
        "tokenize",
        "chat_template",
        "return_dict",
        "return_assistant_tokens_mask",
    }
)
#: Template variables with a known type; a wrong type is a 400, not a template surprise.
TYPED_TEMPLATE_KWARGS: dict[str, type] = {
    "enable_thinking": bool,
    "truncate_history_thinking": bool,
}


def _template_message(index: int, message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role}
    if isinstance(message.content, list):
        out["content"] = [part.model_dump(exclude_none=True) for part in message.content]
    else:
        out["content"] = message.content if message.content is not None else ""
    for key in ("name", "tool_call_id", "reasoning", "reasoning_content"):
        value = getattr(message, key)
        if value is not None:
            out[key] = value
    if message.tool_calls:
        calls = []
        for j, call in enumerate(message.tool_calls):
            try:
                arguments = json.loads(call.function.arguments or "{}")
            except json.JSONDecodeError:
                arguments = None
            if not isinstance(arguments, dict):
                raise InvalidRequestError(
                    f"messages[{index}].tool_calls[{j}].function.arguments must be a JSON "
                    f"object encoded as a string",
                    param=f"messages[{index}].tool_calls",
                )
            calls.append(
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": arguments},
                }
            )
        out["tool_calls"] = calls
    return out


def template_kwargs(req: ChatCompletionRequest) -> dict[str, Any]:
    kwargs = dict(req.chat_template_kwargs or {})
    reserved = sorted(RESERVED_TEMPLATE_KWARGS & set(kwargs))
    if reserved:
        raise InvalidRequestError(
            f"chat_template_kwargs may not set {', '.join(reserved)}: the server sets them",
            param="chat_template_kwargs",
        )
    for key, expected in TYPED_TEMPLATE_KWARGS.items():
        if key in kwargs and not isinstance(kwargs[key], expected):
            raise InvalidRequestError(
                f"chat_template_kwargs.{key} must be a {expected.__name__}",
                param=f"chat_template_kwargs.{key}",
            )
    return kwargs


def render_chat_prompt(tokenizer: Any, req: ChatCompletionRequest) -> str:
    messages = [_template_message(i, m) for i, m in enumerate(req.messages)]
    tools = [tool.model_dump(exclude_none=True) for tool in req.tools] if req.tools else None
    kwargs = template_kwargs(req)
    if req.tool_choice == "none":
        tools = None  # the model is not told about tools it may not call
    try:
        prompt = tokenizer.apply_chat_template(
            messages,
            tools=tools,
            tokenize=False,
            add_generation_prompt=req.add_generation_prompt,
            continue_final_message=req.continue_final_message,
            **kwargs,
        )
    except Exception as exc:  # jinja2 raises TemplateError and plain exceptions alike
        raise InvalidRequestError(
            f"the model's chat template could not render these messages: {exc}",
            param="messages",
        ) from exc
    return str(prompt)
