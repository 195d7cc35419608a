"""The constraint that forces a tool call in Nemotron's qwen3-coder XML format, for
``tool_choice`` "required" or a named function: xgrammar's own structural tag for this
format (``get_model_structural_tag("qwen_3_coder", ...)``, the library SGLang's grammar
backend is), so every parameter is held to its JSON schema (enum, const, bounds, lengths,
patterns, nested objects and arrays, required and additional properties), not only the
frame. The same ``structural_tag`` sampling parameter goes to SGLang and to the cpu
engine, which compile it with the same xgrammar.

The reasoning is not part of the tag: the server's reasoning gate
(``__sglang_reasoning_end_token_ids``) starts the constraint after ``</think>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: At most one whitespace character around each value. Unbounded, a random model (and
#: at times a real one) can spend max_tokens on newlines inside a forced call; one is
#: the chat template's own ``<parameter=NAME>\nVALUE\n</parameter>`` layout, and the
#: parser strips exactly that one (tool_parser.py).
MAX_WHITESPACE = 1


def tool_call_structural_tag(
    tools: Sequence[Mapping[str, Any]], *, function: str | None, parallel: bool
) -> str:
    """The structural tag's JSON: a call to ``function`` (exactly one), or to any of
    ``tools`` (at least one; only one unless ``parallel``)."""
    import xgrammar as xgr

    choice: Any = {"type": "function", "function": {"name": function}} if function else "required"
    tag = xgr.get_model_structural_tag(
        "qwen_3_coder",
        tools=[dict(tool) for tool in tools],
        tool_choice=choice,
        reasoning="disabled",
        parallel_tool_calls=parallel,
        max_whitespace_cnt=MAX_WHITESPACE,
    )
    return str(tag.model_dump_json())
