"""Nemotron 3 reasoning: ``<think>`` ... ``</think>`` then the answer.

The chat template opens ``<think>\\n`` when thinking is on, so the model's output starts
inside the reasoning; with thinking off the prompt already holds ``<think></think>``.
Text before ``</think>`` is reasoning, after it content, verbatim (nothing stripped, so
nothing is lost). A ``<tool_call>`` written while reasoning stays reasoning: the model
is still thinking, and executing a call it drafted there would act on a thought (SGLang's
detector ends the reasoning there instead; see tests/test_reasoning_differential.py).
"""

from __future__ import annotations

from omni_sglang.plugin_api import ReasoningParser, ReasoningSplit

THINK_START = "<think>"
THINK_END = "</think>"


def prompt_opens_thinking(prompt: str) -> bool:
    """True when the prompt ends inside an opened, unclosed ``<think>`` block."""
    start = prompt.rfind(THINK_START)
    return start != -1 and prompt.find(THINK_END, start) == -1


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest tail of ``text`` that is a proper prefix of ``tag``."""
    for k in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:k]):
            return k
    return 0


class NemotronV3ReasoningParser(ReasoningParser):
    def __init__(self, thinking: bool):
        self._in_reasoning = thinking
        # Without an opened block the model may still open one itself, at the very start.
        self._may_self_open = not thinking
        self._held = ""

    @property
    def in_reasoning(self) -> bool:
        return self._in_reasoning

    def feed(self, text: str) -> ReasoningSplit:
        buf = self._held + text
        self._held = ""
        out = ReasoningSplit()
        if self._may_self_open:
            stripped = buf.lstrip()
            if stripped.startswith(THINK_START):
                self._may_self_open = False
                self._in_reasoning = True
                # Whitespace before the tag is the model's output too: keep it as content.
                out.content = buf[: len(buf) - len(stripped)]
                buf = stripped[len(THINK_START) :]
            elif THINK_START.startswith(stripped):  # could still become <think>
                self._held = buf
                return out
            else:
                self._may_self_open = False
        if not self._in_reasoning:
            out.content += buf
            return out
        end = buf.find(THINK_END)
        if end != -1:
            self._in_reasoning = False
            out.reasoning = buf[:end]
            out.content += buf[end + len(THINK_END) :]
            return out
        hold = _partial_suffix(buf, THINK_END)
        out.reasoning = buf[: len(buf) - hold]
        self._held = buf[len(buf) - hold :]
        return out

    def finish(self) -> ReasoningSplit:
        rest, self._held = self._held, ""
        if self._in_reasoning:
            return ReasoningSplit(reasoning=rest)
        return ReasoningSplit(content=rest)
