"""Usage objects and finish reasons, shared by chat and text completions."""

from __future__ import annotations

from typing import Any

from omni_sglang.engines.base import FinishReason


def usage_dict(
    prompt_tokens: int,
    completion_tokens: int,
    reasoning_tokens: int = 0,
    cached_tokens: int = 0,
    media_tokens: dict[str, int] | None = None,
) -> dict[str, Any]:
    """OpenAI's usage; ``prompt_tokens_details`` also counts the prompt's media tokens
    (``image_tokens``, ``video_tokens``, ``audio_tokens``, as OpenAI's ``audio_tokens``)."""
    details: dict[str, int] = {"cached_tokens": cached_tokens}
    details.update({f"{kind}_tokens": n for kind, n in (media_tokens or {}).items()})
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": details,
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
    }


def finish_reason_name(reason: FinishReason | None, made_tool_calls: bool = False) -> str:
    """SGLang's finish reason as OpenAI names it."""
    if reason is None:
        return "stop"
    if reason.type == "length":
        return "length"
    if reason.type == "abort":
        return "abort"
    return "tool_calls" if made_tool_calls else "stop"
