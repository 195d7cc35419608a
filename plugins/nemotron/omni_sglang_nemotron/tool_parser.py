"""Nemotron 3 tool calls (qwen3-coder XML) -> OpenAI tool calls, streamed or whole.

    <tool_call>
    <function=get_weather>
    <parameter=city>
    Paris
    </parameter>
    </function>
    </tool_call>

One incremental state machine serves both modes (``parse`` is ``feed`` + ``finish``), so
streaming and non-streaming agree for every chunking. A call is committed (its name
streamed) only once ``<function=NAME>`` is complete and NAME is one of the request's
tools; a call that is malformed before that, or names an unknown function, stays in
the content verbatim. Arguments stream one parameter at a time as JSON fragments whose
concatenation is the arguments object; values are converted to the types of the tool's
JSON schema (strings stay verbatim, multi-line included).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from omni_sglang.plugin_api import (
    ToolCall,
    ToolCallDelta,
    ToolParser,
    ToolParseResult,
    ToolStreamStep,
)

CALL_START, CALL_END = "<tool_call>", "</tool_call>"
FUNC_END, PARAM_END = "</function>", "</parameter>"
_FUNC = re.compile(r"\s*<function=([^>\n]*)>\n?")
# One whitespace character around a value is layout, not value: the template writes a
# newline there, and the call grammar (tool_grammar.py) admits at most one of any kind.
_PARAM = re.compile(r"\s*<parameter=([^>\n]*)>[ \t\r\n]?")


def _partial_suffix(text: str, tag: str) -> int:
    for k in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:k]):
            return k
    return 0


def _could_become(buf: str, *tags: str) -> bool:
    """True if more text could still make ``buf`` (after whitespace) start with a tag."""
    rest = buf.lstrip()
    return any(tag.startswith(rest) or rest.startswith(tag) for tag in tags)


def convert_value(raw: str, schema: Mapping[str, Any] | None) -> Any:
    """A parameter's text as the type its JSON schema asks for; the text if none fits."""
    types: list[str] = []
    for option in [
        schema or {},
        *((schema or {}).get("anyOf") or (schema or {}).get("oneOf") or []),
    ]:
        kind = option.get("type")
        types.extend(kind if isinstance(kind, list) else [kind] if kind else [])
    if "enum" in (schema or {}) and not types:
        types = ["string"]
    for kind in sorted(set(types), key=lambda t: t == "string"):  # strings last
        value = raw.strip()
        if kind == "integer" and re.fullmatch(r"-?\d+", value):
            return int(value)
        if kind == "number":
            try:
                number = json.loads(value)
            except ValueError:
                continue
            if isinstance(number, int | float) and not isinstance(number, bool):
                return number
        if kind == "boolean" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind == "null" and value.lower() in ("null", "none"):
            return None
        if kind in ("object", "array"):
            try:
                # strict=False: a raw control character inside a string is what the
                # grammar's JSON admits (and what models write); json.dumps escapes it
                # again in the arguments the client gets.
                parsed = json.loads(value, strict=False)
            except ValueError:
                continue
            if isinstance(parsed, dict if kind == "object" else list):
                return parsed
        if kind == "string":
            return raw
    return raw


class Qwen3CoderToolParser(ToolParser):
    def __init__(self, tools: Sequence[Mapping[str, Any]], parallel: bool = True):
        self._schemas: dict[str, Mapping[str, Any]] = {}
        for tool in tools:
            fn = tool.get("function", tool)
            self._schemas[fn["name"]] = fn.get("parameters") or {}
        self._parallel = parallel
        self._buf = ""
        self._mode = "content"
        self._raw = ""  # text of the current call so far, should it turn out malformed
        self._calls = 0
        self._args_open = False
        self._param: str | None = None
        self._name = ""
        self._after_call = False

    # -- public API ----------------------------------------------------------------------

    def feed(self, text: str) -> ToolStreamStep:
        self._buf += text
        return self._drain(final=False)

    def finish(self) -> ToolStreamStep:
        return self._drain(final=True)

    def parse(self, text: str) -> ToolParseResult:
        head, tail = self.feed(text), self.finish()
        calls: dict[int, ToolCall] = {}
        for delta in head.calls + tail.calls:
            call = calls.setdefault(delta.index, ToolCall(name="", arguments=""))
            if delta.name is not None:
                call.name = delta.name
            call.arguments += delta.arguments
        return ToolParseResult(head.content + tail.content, [calls[i] for i in sorted(calls)])

    # -- the state machine ------------------------------------------------------------------

    def _drain(self, final: bool) -> ToolStreamStep:
        out = ToolStreamStep()
        while True:
            progressed = getattr(self, f"_in_{self._mode}")(out, final)
            if not progressed:
                return out

    def _emit_content(self, out: ToolStreamStep, text: str) -> None:
        if self._after_call:  # the newlines between calls are format, not content
            stripped = text.lstrip()
            if not stripped:
                return
            self._after_call = False
            text = stripped
        out.content += text

    def _in_content(self, out: ToolStreamStep, final: bool) -> bool:
        start = self._buf.find(CALL_START)
        if start != -1 and (self._parallel or self._calls == 0):
            self._emit_content(out, self._buf[:start])
            self._raw = CALL_START
            self._buf = self._buf[start + len(CALL_START) :]
            self._mode = "header"
            return True
        hold = 0 if final else _partial_suffix(self._buf, CALL_START)
        self._emit_content(out, self._buf[: len(self._buf) - hold])
        self._buf = self._buf[len(self._buf) - hold :]
        return False

    def _malformed_header(self, out: ToolStreamStep) -> bool:
        """Not a call after all: its text so far is content; rescan the rest."""
        self._emit_content(out, self._raw)
        self._raw = ""
        self._mode = "content"
        return True

    def _in_header(self, out: ToolStreamStep, final: bool) -> bool:
        match = _FUNC.match(self._buf)
        if match is None:
            still_arriving = _could_become(self._buf, "<function=") or re.match(
                r"\s*<function=[^>\n]*$", self._buf
            )
            return False if (still_arriving and not final) else self._malformed_header(out)
        if not final and match.end() == len(self._buf) and not self._buf.endswith("\n"):
            return False  # the newline after the tag may still come
        name = match.group(1)
        if name not in self._schemas:  # an unknown function is not a call: keep the text
            self._raw += self._buf[: match.end()]
            self._buf = self._buf[match.end() :]
            return self._malformed_header(out)
        self._buf = self._buf[match.end() :]
        out.calls.append(ToolCallDelta(index=self._calls, name=name))
        self._calls += 1
        self._name = name
        self._args_open = False
        self._raw = ""
        self._mode = "function"
        return True

    def _close_call(self, out: ToolStreamStep) -> None:
        out.calls.append(
            ToolCallDelta(index=self._calls - 1, arguments="}" if self._args_open else "{}")
        )
        self._args_open = False

    def _in_function(self, out: ToolStreamStep, final: bool) -> bool:
        param = _PARAM.match(self._buf)
        if param is not None:
            if not final and param.end() == len(self._buf) and not self._buf.endswith("\n"):
                return False
            self._param = param.group(1)
            self._buf = self._buf[param.end() :]
            self._mode = "param"
            return True
        stripped = self._buf.lstrip()
        if stripped.startswith(FUNC_END):
            self._buf = stripped[len(FUNC_END) :]
            self._close_call(out)
            self._mode = "after"
            return True
        still_arriving = _could_become(self._buf, "<parameter=", FUNC_END) or re.match(
            r"\s*<parameter=[^>\n]*$", self._buf
        )
        if still_arriving and not final:
            return False
        # Malformed inside a committed call: close it; the rest is content.
        self._close_call(out)
        self._mode = "content"
        self._after_call = True
        return True

    def _in_param(self, out: ToolStreamStep, final: bool) -> bool:
        ends = [p for p in (self._buf.find(PARAM_END), self._buf.find(FUNC_END)) if p != -1]
        if not ends and not final:
            return False
        end = min(ends) if ends else len(self._buf)
        raw = self._buf[:end]
        if raw[-1:] in (" ", "\t", "\r", "\n"):
            raw = raw[:-1]
        skip = len(PARAM_END) if self._buf.startswith(PARAM_END, end) else 0
        self._buf = self._buf[end + skip :]
        name = self._param or ""
        properties = self._schemas.get(self._name, {}).get("properties") or {}
        value = convert_value(raw, properties.get(name))
        prefix = ", " if self._args_open else "{"
        out.calls.append(
            ToolCallDelta(
                index=self._calls - 1,
                arguments=f"{prefix}{json.dumps(name)}: {json.dumps(value, ensure_ascii=False)}",
            )
        )
        self._args_open = True
        self._mode = "function"
        return True

    def _in_after(self, out: ToolStreamStep, final: bool) -> bool:
        stripped = self._buf.lstrip()
        if stripped.startswith(CALL_END):
            self._buf = stripped[len(CALL_END) :]
        elif not final and (not stripped or CALL_END.startswith(stripped)):
            return False
        self._mode = "content"
        self._after_call = True
        return True
