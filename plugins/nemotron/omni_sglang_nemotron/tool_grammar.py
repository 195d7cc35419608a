"""The constraints on Nemotron's qwen3-coder XML tool calls: xgrammar's own structural
tag for this format (``get_model_structural_tag("qwen_3_coder", ...)``, the library
SGLang's grammar backend is), so every parameter is held to its JSON schema (enum,
const, bounds, lengths, patterns, nested objects and arrays, required and additional
properties), not only the frame. The same ``structural_tag`` sampling parameter goes to
SGLang and to the cpu engine, which compile it with the same xgrammar.

- ``required`` / a named function: the output is a call (one, or several if parallel).
- ``auto``: text stays free; from the moment the text says ``<tool_call>``, the rest is
  a whole call to one of the tools (xgrammar's triggered tags). xgrammar triggers on
  ``<tool_call>\\n<function=``; ours triggers on ``<tool_call>`` alone, since the tool
  parser starts a call there too, so no text can open a call that the grammar does not
  then hold to a schema.

The reasoning is not part of the tag: the server's reasoning gate
(``__sglang_reasoning_end_token_ids``) starts the constraint after ``</think>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from omni_sglang_nemotron.tool_schema_strings import with_exact_strings

#: At most one whitespace character around each value. Unbounded, a random model (and
#: at times a real one) can spend max_tokens on newlines inside a forced call; one is
#: the chat template's own ``<parameter=NAME>\nVALUE\n</parameter>`` layout, and the
#: parser strips exactly that one (tool_parser.py).
MAX_WHITESPACE = 1
#: Where the tool parser starts a call (tool_parser.CALL_START).
CALL_TRIGGER = "<tool_call>"


def tool_call_structural_tag(
    tools: Sequence[Mapping[str, Any]],
    *,
    function: str | None = None,
    auto: bool = False,
    parallel: bool,
) -> str:
    """The structural tag's JSON: exactly one call to ``function`` if named; else, with
    ``auto``, free text in which any call it opens is held to its schema; else at least
    one call to any of ``tools``. More than one call only if ``parallel``."""
    import xgrammar as xgr

    choice: Any = "auto" if auto else "required"
    if function is not None:
        choice = {"type": "function", "function": {"name": function}}
    tag = xgr.get_model_structural_tag(
        "qwen_3_coder",
        tools=[_with_exact_strings(tool) for tool in tools],
        tool_choice=choice,
        reasoning="disabled",
        parallel_tool_calls=parallel,
        max_whitespace_cnt=MAX_WHITESPACE,
    )
    if choice == "auto" and isinstance(tag.format, xgr.structural_tag.TriggeredTagsFormat):
        tag.format.triggers = [CALL_TRIGGER]
    return str(tag.model_dump_json())


def _with_exact_strings(tool: Mapping[str, Any]) -> dict[str, Any]:
    function = dict(tool.get("function") or {})
    if isinstance(function.get("parameters"), dict):
        function["parameters"] = with_exact_strings(function["parameters"])
    return {**tool, "function": function}
