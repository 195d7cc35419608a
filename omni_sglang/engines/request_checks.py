"""Checks every engine applies to a request before running it, so both engines refuse the
same input with the same 400.

Token ids must name rows of the model's vocabulary: SGLang does not check prompt ids, and
one past its embedding table kills its scheduler process (and with it every request in
flight), as measured on the sglang engine here; ``logit_bias`` and ``stop_token_ids``
outside the vocabulary SGLang either refuses with its own wording or silently ignores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from omni_sglang.engines.base import EngineRequest
from omni_sglang.errors import InvalidRequestError


def _outside(ids: Iterable[int], limit: int) -> list[int]:
    return sorted(t for t in ids if not 0 <= t < limit)


def _bias_ids(bias: Any) -> list[int]:
    if bias is None:
        return []
    try:
        return [int(k) for k in dict(bias)]
    except (TypeError, ValueError):
        raise InvalidRequestError("logit_bias maps token ids to numbers", "logit_bias") from None


def _integers(values: Any, name: str) -> list[int]:
    values = list(values or [])
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise InvalidRequestError(f"{name} must be integers", name)
    return values


def check_token_ids(request: EngineRequest, limit: int) -> None:
    """Prompt ids, ``logit_bias`` keys and ``stop_token_ids`` within ``[0, limit)``."""
    params = request.sampling_params or {}
    named = {
        "input_ids": _integers(request.input_ids, "input_ids"),
        "logit_bias": _bias_ids(params.get("logit_bias")),
        "stop_token_ids": _integers(params.get("stop_token_ids"), "stop_token_ids"),
    }
    for name, ids in named.items():
        check_vocab_ids(ids, limit, name)


def check_vocab_ids(ids: Iterable[int], limit: int, name: str) -> None:
    """Every id within the vocabulary ``[0, limit)``; ``name``: the field they came in."""
    bad = _outside(ids, limit)
    if bad:
        raise InvalidRequestError(
            f"{name} names token ids outside this vocabulary [0, {limit}): {bad[:5]}", name
        )


def check_sampling_keys(params: dict[str, Any], known: Iterable[str]) -> None:
    """Every ``sampling_params`` key is one the engine knows (SGLang's ``SamplingParams``
    raises a bare TypeError for an unknown one, deep in its tokenizer manager)."""
    known = set(known)
    unknown = sorted(set(params) - known)
    if unknown:
        raise InvalidRequestError(
            f"unknown sampling_params key(s): {', '.join(unknown)}; "
            f"supported: {', '.join(sorted(known))}",
            param=unknown[0],
        )


@lru_cache(maxsize=64)
def _processor(serialized: str) -> Any:
    # SGLang's own deserializer: the same string works in SGLang's scheduler.
    from sglang.srt.sampling.custom_logit_processor import CustomLogitProcessor

    return CustomLogitProcessor.from_str(serialized)


async def load_logit_processor(serialized: str | None) -> Any:
    """The ``custom_logit_processor`` as an instance (None for none). A string that does
    not load is a 400 here: in SGLang's scheduler it would raise in the batch step and
    take every running request down with it."""
    if not serialized:
        return None
    try:
        return await asyncio.to_thread(_processor, serialized)
    except Exception as exc:
        raise InvalidRequestError(
            f"custom_logit_processor could not be deserialized: {type(exc).__name__}: {exc}; "
            "it must be the string CustomLogitProcessor.to_str() makes",
            "custom_logit_processor",
        ) from exc
