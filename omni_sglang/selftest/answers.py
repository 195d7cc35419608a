"""Answer checks: questions any capable model answers, run only against a real
checkpoint (a random model fails them by design). Each asks for a one-word answer with
thinking off, so it is quick and the judgement is a substring."""

from __future__ import annotations

from typing import Any

from omni_sglang.selftest.context import Context
from omni_sglang.selftest.result import expect


def _answer(ctx: Context, text: str, *parts: dict[str, Any]) -> str:
    answer = ctx.ask(text, *parts, max_tokens=32, temperature=0.0)
    return str(answer["choices"][0]["message"].get("content") or "")


def image_colour(ctx: Context, metrics: dict[str, Any]) -> str:
    said = _answer(ctx, "What colour is this image? Answer with one word.", ctx.part("red.png"))
    metrics.update(answer=said)
    expect("red" in said.lower(), f"a red image, answered {said!r}")
    return f"answered {said.strip()!r}"


def arithmetic(ctx: Context, metrics: dict[str, Any]) -> str:
    said = _answer(ctx, "What is 17 + 25? Answer with the number only.")
    metrics.update(answer=said)
    expect("42" in said, f"17 + 25, answered {said!r}")
    return f"answered {said.strip()!r}"


def spoken_digit(ctx: Context, metrics: dict[str, Any]) -> str:
    said = _answer(
        ctx, "Which number is spoken? Answer with the digit only.", ctx.part("seven.wav")
    )
    metrics.update(answer=said)
    expect("7" in said or "seven" in said.lower(), f"'seven' spoken, answered {said!r}")
    return f"answered {said.strip()!r}"
