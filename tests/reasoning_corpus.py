"""Model outputs the reasoning parsers are checked against: (name, thinking on, text)."""

from __future__ import annotations

CORPUS: list[tuple[str, bool, str]] = [
    ("plain", True, "Let me think.\nTwo plus two is four.\n</think>\nThe answer is 4."),
    ("no newline", True, "short</think>answer"),
    ("empty reasoning", True, "</think>Just the answer."),
    ("empty answer", True, "Thinking only.</think>"),
    ("truncated", True, "I was thinking about this and then ran out of tok"),
    ("partial end tag", True, "Thinking and then </thi"),
    ("angle brackets", True, "a < b and b > c, so </ is not </think>a<b>c</b>"),
    ("end tag twice", True, "r</think>c1</think>c2"),
    (
        "tool call in reasoning",
        True,
        "Maybe <tool_call>\n<function=f>\n</function>\n</tool_call> no.</think>Done.",
    ),
    (
        "tool call after reasoning",
        True,
        "Need weather.</think>\n<tool_call>\n<function=get>\n"
        "<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>",
    ),
    ("forced close", True, "budget reached.\n\n</think>\n\nFinal."),
    ("unicode", True, "Ünïcødé 你好 ✓</think>答案 ✓"),
    ("thinking off", False, "The answer is 4."),
    ("thinking off, tags in text", False, "Use </think> to close and <think> to open."),
    ("thinking off, self opened", False, "<think>I will think anyway.</think>Answer."),
    ("thinking off, self opened after space", False, "\n<think>x</think>y"),
    ("thinking off, empty", False, ""),
    ("thinking on, empty", True, ""),
]
