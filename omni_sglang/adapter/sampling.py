"""OpenAI sampling fields -> SGLang ``sampling_params``, and the token budget rules."""

from __future__ import annotations

from typing import Any

from omni_sglang.errors import ContextLengthExceededError, InvalidRequestError
from omni_sglang.protocol.openai import SamplingFields


def resolve_max_new_tokens(requested: int | None, prompt_tokens: int, context: int) -> int:
    """OpenAI's rule: unset means "what the context has room for"; too much is a 400."""
    if prompt_tokens >= context:
        raise ContextLengthExceededError(
            f"This model's maximum context length is {context} tokens. However, your "
            f"prompt has {prompt_tokens} tokens. Please shorten the messages.",
            param="messages",
        )
    room = context - prompt_tokens
    if requested is None:
        return room
    if requested > room:
        raise ContextLengthExceededError(
            f"This model's maximum context length is {context} tokens. However, you "
            f"requested {prompt_tokens + requested} tokens ({prompt_tokens} in the prompt, "
            f"{requested} in the completion). Please reduce the length of the prompt or "
            f"of max_tokens (at most {room} here).",
            param="max_tokens",
        )
    return requested


#: The fields that shape the sampling distribution. A model's recommended sampling is one
#: setting of all of them; a request that sets any has chosen its own distribution, and
#: mixing in the model's others would change what it asked for (a temperature under the
#: model card's greedy ``top_k: 1`` samples nothing).
DISTRIBUTION_FIELDS = ("temperature", "top_p", "top_k", "min_p")


def applicable_defaults(req: SamplingFields, defaults: dict[str, Any]) -> dict[str, Any]:
    """The model's recommended ``defaults`` that apply to ``req``: its distribution
    fields only if the request sets none of them (otherwise the engine's neutral values
    stand), any other field where the request leaves it unset."""
    chose_distribution = any(getattr(req, name) is not None for name in DISTRIBUTION_FIELDS)
    return {
        key: value
        for key, value in defaults.items()
        if not (chose_distribution and key in DISTRIBUTION_FIELDS)
    }


def defaults_header(applied: dict[str, Any]) -> dict[str, str]:
    """``X-Sampling-Defaults``: which of the model's recommended values this request ran
    with (``none``: only its own fields and the engine's neutral values)."""
    text = ", ".join(f"{key}={value}" for key, value in sorted(applied.items()))
    return {"X-Sampling-Defaults": text or "none"}


def seed_warnings(req: SamplingFields, honours_seed: bool) -> list[str]:
    """OpenAI's ``seed`` is best effort: where the engine cannot apply it, say so."""
    if req.seed is None or honours_seed:
        return []
    return [
        "'seed' is not applied: SGLang samples reproducibly only with "
        "--enable-deterministic-inference (GPU attention backends)"
    ]


def custom_processor(req: SamplingFields, enabled: bool) -> str | None:
    """The client's own logits processor, only where the operator allowed it."""
    if req.custom_logit_processor is None:
        if req.custom_params is not None:
            raise InvalidRequestError("'custom_params' needs 'custom_logit_processor'")
        return None
    if not enabled:
        raise InvalidRequestError(
            "custom_logit_processor is disabled on this server (it runs client code); "
            "the operator can allow it with --enable-custom-logit-processor",
            param="custom_logit_processor",
        )
    return req.custom_logit_processor


def sampling_params(
    req: SamplingFields,
    *,
    max_new_tokens: int,
    max_n: int,
    max_stops: int,
    defaults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The request's sampling as SGLang keys; unset fields take ``defaults`` (already
    narrowed by :func:`applicable_defaults`), then SGLang's."""
    if req.n > max_n:
        raise InvalidRequestError(f"'n' is {req.n}; this server allows at most {max_n}", "n")
    stops = req.stop_list()
    if len(stops) > max_stops:
        raise InvalidRequestError(
            f"{len(stops)} stop sequences given; at most {max_stops} are allowed", "stop"
        )
    params: dict[str, Any] = dict(defaults or {})
    explicit = {
        "temperature": req.temperature,
        "top_p": req.top_p,
        "top_k": req.top_k,
        "min_p": req.min_p,
        "frequency_penalty": req.frequency_penalty,
        "presence_penalty": req.presence_penalty,
        "repetition_penalty": req.repetition_penalty,
        "sampling_seed": req.seed,
    }
    params.update({k: v for k, v in explicit.items() if v is not None})
    params.update(
        max_new_tokens=max_new_tokens,
        n=req.n,
        ignore_eos=req.ignore_eos,
        skip_special_tokens=req.skip_special_tokens,
        no_stop_trim=req.no_stop_trim,
    )
    if req.min_tokens:
        if req.min_tokens > max_new_tokens:
            raise InvalidRequestError(
                f"min_tokens ({req.min_tokens}) exceeds max_tokens ({max_new_tokens})",
                "min_tokens",
            )
        params["min_new_tokens"] = req.min_tokens
    if stops:
        params["stop"] = stops
    if req.stop_token_ids:
        params["stop_token_ids"] = list(req.stop_token_ids)
    if req.logit_bias:
        params["logit_bias"] = dict(req.logit_bias)
    if req.custom_params is not None:
        params["custom_params"] = dict(req.custom_params)
    return params
