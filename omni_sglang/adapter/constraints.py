"""``tool_choice`` and ``response_format`` -> a grammar in SGLang's sampling params.

- ``required`` / a named function: the plugin's forced call;
- ``auto`` (or unset) with tools: the plugin's auto constraint (text free, calls held to
  their schemas; off with ``constrain_auto_tools``), unless a ``response_format`` applies;
- ``response_format`` ``json_object`` / ``json_schema``: SGLang's ``json_schema``.

The grammar itself is the model's business (the tool-parser plugin writes the EBNF of
its call format); this module decides when one applies, and gates it behind the
reasoning: with thinking on, the model reasons freely and the grammar starts after it
closes its reasoning (SGLang's ``__sglang_reasoning_end_token_ids``).
"""

from __future__ import annotations

import json
from typing import Any

from omni_sglang.adapter.json_schema_strings import with_valid_json_strings
from omni_sglang.engines.base import REASONING_END_KEY, EngineRequest
from omni_sglang.errors import InvalidRequestError, UnsupportedFieldError
from omni_sglang.protocol.openai import ChatCompletionRequest, NamedToolChoice
from omni_sglang.state import ServerState


def tool_dicts(req: ChatCompletionRequest) -> list[dict[str, Any]]:
    return [tool.model_dump(exclude_none=True) for tool in req.tools or []]


def named_function(req: ChatCompletionRequest) -> str | None:
    if not isinstance(req.tool_choice, NamedToolChoice):
        return None
    name = req.tool_choice.function.name
    known = [t.function.name for t in req.tools or []]
    if name not in known:
        raise InvalidRequestError(
            f"tool_choice names {name!r}, which is not in 'tools' ({', '.join(known) or 'none'})",
            "tool_choice",
        )
    return name


def _auto_tool_grammar(req: ChatCompletionRequest, state: ServerState) -> dict[str, str] | None:
    """tool_choice "auto" (or unset) with tools: free text, calls held to their schemas,
    unless the server turned it off (a function with ``strict: true`` still asks for it,
    as OpenAI's strict function calling does) or the plugin cannot."""
    plugin = state.plugins.tools
    strict = any(tool.function.strict for tool in req.tools or [])
    if not req.tools or plugin is None or not (state.config.constrain_auto_tools or strict):
        return None
    return plugin.auto_constraint(tool_dicts(req), parallel=req.parallel_tool_calls is not False)


def _tool_grammar(req: ChatCompletionRequest, state: ServerState) -> dict[str, str] | None:
    function = named_function(req)
    if req.tool_choice != "required" and function is None:
        return None
    plugin = state.plugins.tools
    grammar = None
    if plugin is not None:
        grammar = plugin.constraint(
            tool_dicts(req), function=function, parallel=req.parallel_tool_calls is not False
        )
    if grammar is None:
        raise UnsupportedFieldError(
            "this server's tool parser cannot force a call, so tool_choice 'required' or a "
            "named function is not available; use 'auto'",
            "tool_choice",
        )
    return grammar


def _format_grammar(req: ChatCompletionRequest) -> dict[str, str] | None:
    fmt = req.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"json_schema": json.dumps({"type": "object"})}
    schema = (fmt.json_schema or {}).get("schema")
    if not isinstance(schema, dict):
        raise InvalidRequestError(
            "response_format json_schema needs 'json_schema': {'name': ..., 'schema': {...}}",
            "response_format",
        )
    return {"json_schema": json.dumps(with_valid_json_strings(schema))}


def apply_constraints(
    req: ChatCompletionRequest,
    state: ServerState,
    end_ids: list[int] | None,
    request: EngineRequest,
) -> None:
    """The request's grammar, if any; ``end_ids`` (the tokens that close the reasoning
    the prompt opened) hold it back until the reasoning is over."""
    tool_grammar = _tool_grammar(req, state)
    format_grammar = _format_grammar(req)
    if tool_grammar and format_grammar:
        raise InvalidRequestError(
            "response_format cannot be combined with tool_choice 'required' or a named "
            "function: one grammar applies per request",
            "response_format",
        )
    grammar = tool_grammar or format_grammar
    if grammar is None and req.tool_choice in (None, "auto"):
        # An explicit response_format wins over the implicit auto constraint.
        grammar = _auto_tool_grammar(req, state)
    if grammar is None:
        return
    request.sampling_params.update(grammar)
    if end_ids:
        custom = dict(request.sampling_params.get("custom_params") or {})
        custom[REASONING_END_KEY] = end_ids
        request.sampling_params["custom_params"] = custom
        request.require_reasoning = True
