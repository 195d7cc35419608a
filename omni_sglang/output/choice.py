"""One choice's text -> reasoning, content and tool calls, streamed or whole.

The reasoning parser runs first (reasoning never holds tool calls we execute); the tool
parser then sees only the content. Both are optional plugins: with neither, all text is
content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from omni_sglang.engines.base import FinishReason
from omni_sglang.plugin_api import ReasoningParser, ToolCallDelta, ToolParser


@dataclass
class ChoiceDelta:
    reasoning: str = ""
    content: str = ""
    tool_calls: list[ToolCallDelta] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.reasoning or self.content or self.tool_calls)


@dataclass
class FinalChoice:
    reasoning: str | None
    content: str
    tool_calls: list[dict[str, Any]]


class ChoiceStream:
    def __init__(
        self,
        reasoning: ReasoningParser | None,
        tools: ToolParser | None,
        reasoning_end_ids: list[int] | None = None,
    ):
        """``reasoning_end_ids``: the tokens that close the reasoning (the plugin's
        ``reasoning_end_ids``); they are markup, not counted as reasoning tokens."""
        self._reasoning = reasoning
        self._tools = tools
        self._end_ids = reasoning_end_ids or []
        self._reasoning_ids: list[int] = []
        self.finish_reason: FinishReason | None = None
        self.completion_tokens = 0
        self.reasoning_tokens = 0
        self._calls_seen = 0

    @property
    def in_reasoning(self) -> bool:
        return self._reasoning is not None and self._reasoning.in_reasoning

    def _route_content(self, delta: ChoiceDelta, content: str, final: bool) -> None:
        if self._tools is None:
            delta.content += content
            return
        step = self._tools.feed(content) if content else None
        for piece in [step, self._tools.finish() if final else None]:
            if piece is None:
                continue
            delta.content += piece.content
            delta.tool_calls.extend(piece.calls)
            self._calls_seen = max(
                [self._calls_seen] + [c.index + 1 for c in piece.calls if c.name is not None]
            )

    def feed(self, text: str, token_ids: Sequence[int] = ()) -> ChoiceDelta:
        was_reasoning = self.in_reasoning
        if was_reasoning:
            self._reasoning_ids.extend(token_ids)
        self.completion_tokens += len(token_ids)
        delta = ChoiceDelta()
        if self._reasoning is None:
            self._route_content(delta, text, final=False)
            return delta
        split = self._reasoning.feed(text) if text else None
        if split is not None:
            delta.reasoning += split.reasoning
            self._route_content(delta, split.content, final=False)
        if was_reasoning:
            self.reasoning_tokens = self._count_reasoning(closed=not self.in_reasoning)
        return delta

    def _count_reasoning(self, closed: bool) -> int:
        """Tokens of the reasoning's text: those before the closing tag once it came
        (a chunk may carry the tag and the answer's first tokens too)."""
        ids, end = self._reasoning_ids, self._end_ids
        if closed and end:
            for start in range(len(ids) - len(end) + 1):
                if ids[start : start + len(end)] == end:
                    return start
        return len(ids)

    def finish(self) -> ChoiceDelta:
        delta = ChoiceDelta()
        content = ""
        if self._reasoning is not None:
            split = self._reasoning.finish()
            delta.reasoning += split.reasoning
            content = split.content
        self._route_content(delta, content, final=True)
        return delta

    @property
    def made_tool_calls(self) -> bool:
        return self._calls_seen > 0


def collect(stream: ChoiceStream, deltas: list[ChoiceDelta]) -> FinalChoice:
    """Fold streamed deltas into the non-streaming message (one code path for both)."""
    reasoning = "".join(d.reasoning for d in deltas)
    content = "".join(d.content for d in deltas)
    calls: dict[int, dict[str, Any]] = {}
    for d in deltas:
        for c in d.tool_calls:
            entry = calls.setdefault(c.index, {"name": "", "arguments": ""})
            if c.name is not None:
                entry["name"] = c.name
            entry["arguments"] += c.arguments
    return FinalChoice(
        reasoning=reasoning if stream._reasoning is not None else None,
        content=content,
        tool_calls=[calls[i] for i in sorted(calls)],
    )
