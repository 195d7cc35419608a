"""A chat request's thinking: ``reasoning_effort``, the budget's spellings, the server's
default budget, and the budget processor they attach to the engine request."""

from __future__ import annotations

from typing import Any

from omni_sglang.engines.base import EngineRequest
from omni_sglang.errors import InvalidRequestError, UnsupportedFieldError
from omni_sglang.protocol.openai import ChatCompletionRequest
from omni_sglang.state import ServerState


def explicit_budget(req: ChatCompletionRequest) -> int | None:
    """The budget from any of its spellings; they must agree when several are set."""
    kwargs = req.chat_template_kwargs or {}
    candidates = {
        "thinking_token_budget": req.thinking_token_budget,
        "reasoning_budget": req.reasoning_budget,
        "chat_template_kwargs.reasoning_budget": kwargs.get("reasoning_budget"),
        "nvext.max_thinking_tokens": req.nvext.max_thinking_tokens if req.nvext else None,
    }
    given = {k: v for k, v in candidates.items() if v is not None}
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < -1:
            raise InvalidRequestError(
                f"{name} must be an integer >= 0, or -1 for no limit; got {value!r}", name
            )
    if len(set(given.values())) > 1:
        raise InvalidRequestError(
            f"conflicting thinking budgets: {given}; set one of them", next(iter(given))
        )
    return next(iter(given.values()), None)


def resolve_thinking(
    req: ChatCompletionRequest, state: ServerState
) -> tuple[ChatCompletionRequest, int | None]:
    """The request as its ``reasoning_effort`` means it (the template's thinking switch
    set), and its reasoning budget (None: no cap): an explicit budget, else the
    effort's, else the server's default."""
    budget = explicit_budget(req)
    effort = req.reasoning_effort
    if effort is not None:
        req, budget = _apply_effort(req, state, effort, budget)
    elif budget is None:
        budget = state.config.default_thinking_budget
    budget = None if budget == -1 else budget
    if budget is not None and state.plugins.thinking_budget is None:
        raise UnsupportedFieldError(
            "this server has no thinking-budget processor configured "
            "(--thinking-budget-processor); send no budget or -1",
            "thinking_token_budget",
        )
    return req, budget


def _apply_effort(
    req: ChatCompletionRequest, state: ServerState, effort: str, budget: int | None
) -> tuple[ChatCompletionRequest, int | None]:
    reasoning = state.plugins.reasoning
    if reasoning is None:
        raise UnsupportedFieldError(
            "'reasoning_effort' needs a reasoning parser (--reasoning-parser)", "reasoning_effort"
        )
    kwargs = dict(req.chat_template_kwargs or {})
    switch = reasoning.thinking_switch(effort != "none")
    for key, value in switch.items():
        if key in kwargs and kwargs[key] != value:
            raise InvalidRequestError(
                f"reasoning_effort {effort!r} and chat_template_kwargs.{key}={kwargs[key]!r} "
                "conflict; set one of them",
                "reasoning_effort",
            )
    if effort == "none":
        if budget is not None and budget > 0:
            raise InvalidRequestError(
                f"reasoning_effort 'none' turns thinking off, but a thinking budget of "
                f"{budget} was given; set one of them",
                "reasoning_effort",
            )
        effort_budget = None
    else:
        effort_budget = state.config.reasoning_effort_budgets[effort]
        if budget is not None and budget != effort_budget:
            raise InvalidRequestError(
                f"reasoning_effort {effort!r} means a thinking budget of {effort_budget} on "
                f"this server, but a budget of {budget} was given; set one of them",
                "reasoning_effort",
            )
    return req.model_copy(update={"chat_template_kwargs": {**kwargs, **switch}}), effort_budget


def attach_thinking_budget(
    budget: int | None,
    state: ServerState,
    prompt: str,
    max_new: int,
    request: EngineRequest,
) -> None:
    """Cap the reasoning with the budget plugin's logits processor when asked to.

    ``reasoning_answer_reserve`` (off by default, as in NIM) asks the plugin to also cap
    it so that ``max_tokens`` keeps that many tokens for the answer, budget or not.
    """
    plugin = state.plugins.thinking_budget
    reserve = state.config.reasoning_answer_reserve
    if plugin is None or (budget is None and not reserve):
        return
    params = plugin.custom_params(
        {
            "thinking_token_budget": budget,
            "grace_tokens": state.config.thinking_grace_tokens,
            "budget_mode": state.config.thinking_budget_mode,
            "answer_reserve": reserve,
            "max_new_tokens": max_new,
            "prompt": prompt,
        },
        state.tokenizer,
    )
    if params is None:  # the prompt opened no reasoning: nothing to cap
        return
    if request.custom_logit_processor is not None:
        raise InvalidRequestError(
            "a thinking budget and a custom_logit_processor cannot be combined in one "
            "request (SGLang runs one processor per request)",
            "custom_logit_processor",
        )
    request.custom_logit_processor = state.budget_processor_string()
    custom: dict[str, Any] = request.sampling_params.get("custom_params", {})
    request.sampling_params["custom_params"] = {**custom, **params}
