"""Our qwen3-coder tool-call parser behind SGLang's detector interface.

SGLang creates a detector per request without the tools and passes them to every call;
our parser is built with them, so it is created on the first streamed chunk. The
detector subclasses SGLang's own ``Qwen3CoderDetector`` only for what the scheduler
reads besides parsing (the structural-tag grammar of the same call format); parsing is
ours: typed values from the tool's schema, unknown or malformed calls kept as content.

This module imports SGLang: only SGLang processes load it.
"""

from __future__ import annotations

from typing import Any

from sglang.srt.function_call.core_types import StreamingParseResult, ToolCallItem
from sglang.srt.function_call.qwen3_coder_detector import Qwen3CoderDetector

from omni_sglang.plugin_api import ToolStreamStep
from omni_sglang_nemotron.tool_parser import Qwen3CoderToolParser

#: Our parser's name in SGLang's registry (``--tool-call-parser omni_qwen3_coder``).
TOOL_PARSER_KEY = "omni_qwen3_coder"


def _tool_dicts(tools: Any) -> list[dict[str, Any]]:
    """SGLang's ``Tool`` models (or plain dicts) as the OpenAI dicts our parser reads."""
    return [t.model_dump() if hasattr(t, "model_dump") else dict(t) for t in tools or []]


def _result(step: ToolStreamStep) -> StreamingParseResult:
    calls = [
        ToolCallItem(tool_index=d.index, name=d.name, parameters=d.arguments) for d in step.calls
    ]
    return StreamingParseResult(normal_text=step.content, calls=calls)


class OmniQwen3CoderDetector(Qwen3CoderDetector):
    def __init__(self) -> None:
        super().__init__()
        self._stream: Qwen3CoderToolParser | None = None

    def _parser(self, tools: Any) -> Qwen3CoderToolParser:
        if self._stream is None:
            self._stream = Qwen3CoderToolParser(_tool_dicts(tools))
        return self._stream

    def detect_and_parse(self, text: str, tools: Any) -> StreamingParseResult:
        parsed = Qwen3CoderToolParser(_tool_dicts(tools)).parse(text)
        calls = [
            ToolCallItem(tool_index=i, name=c.name, parameters=c.arguments)
            for i, c in enumerate(parsed.calls)
        ]
        return StreamingParseResult(normal_text=parsed.content, calls=calls)

    def parse_streaming_increment(self, new_text: str, tools: Any) -> StreamingParseResult:
        return _result(self._parser(tools).feed(new_text))

    def finish(self, tools: Any) -> StreamingParseResult:
        return _result(self._parser(tools).finish())
