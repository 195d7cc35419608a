"""The checks in the order they run (health first: it finds the model's name)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omni_sglang.selftest import answers, checks_media, checks_text
from omni_sglang.selftest.context import Context

Check = Callable[[Context, dict[str, Any]], str]

#: name -> check; every one holds on any model.
CHECKS: dict[str, Check] = {
    "health and metadata": checks_text.health,
    "text only": checks_text.text_only,
    "reasoning split": checks_text.reasoning_split,
    "thinking budget": checks_text.thinking_budget,
    "streaming = non-streaming": checks_text.streaming_equals_whole,
    "tool calls": checks_text.tool_calls,
    "bad requests": checks_text.errors_are_4xx_json,
    "completions": checks_text.completions,
    "/generate": checks_text.native_generate,
    "frontend program": checks_text.frontend_program,
    "images": checks_media.images,
    "media by URL": checks_media.media_by_url,
    "video": checks_media.video,
    "video sampling": checks_media.video_sampling,
    "EVS": checks_media.efficient_video_sampling,
    "audio": checks_media.audio,
    "audio in video": checks_media.audio_in_video,
    "multi-turn": checks_media.multi_turn,
    "batched video": checks_media.batched_video,
}
#: name -> check only a real checkpoint passes.
ANSWER_CHECKS: dict[str, Check] = {
    "answer: image colour": answers.image_colour,
    "answer: arithmetic": answers.arithmetic,
    "answer: spoken digit": answers.spoken_digit,
}
