"""The thinking-budget logits processor, an SGLang ``CustomLogitProcessor``.

The same class runs in SGLang's scheduler (GPU) and in the CPU engine. It counts
generated tokens only. The plugin plans a window per request (``force_from``,
``force_by``, the ``end`` sequence): from ``force_from`` on, the first line end the model
writes starts the end sequence (``.\\n\\n</think>``, or ``</think>`` alone where a budget is
too small for the rest), and at ``force_by`` it starts regardless, token by token,
skipping what the output already ends with; the answer is then left free. The budget
is a maximum when ``force_by`` leaves room for the end's text inside it (the default);
NVIDIA's rule (finish the line past the budget, then close) is the same machine with
the window after the budget. It stops intervening as soon as the model closes the
reasoning itself with ``</think>``. A ``<tool_call>`` written before that is reasoning
(a drafted call, to the reasoning parser too) and counts against the budget: NVIDIA's
processor stops there instead, and a model drafting calls in its reasoning then
reasons on without limit (measured: 220 reasoning tokens for a budget of 4 x 30).

Per-request state lives in the request's ``custom_params`` dict, which SGLang keeps for
the request's lifetime; each step scans only the newest output token, so the cost per
step does not grow with the prompt (SGLang's ``ThinkingBudgetLogitProcessor`` rebuilds
prompt + output every step) and all forced rows are written with one tensor operation.

This module imports SGLang; the plugin imports it only when the class is needed.
"""

from __future__ import annotations

from typing import Any

import torch
from sglang.srt.sampling.custom_logit_processor import CustomLogitProcessor

from omni_sglang_nemotron.plugin import BUDGET_KEY

_STATE = "_omni_budget_state"


def _longest_overlap(output: list[int], sequence: list[int]) -> int:
    """How much of ``sequence``'s start the output already ends with."""
    for k in range(min(len(sequence), len(output)), 0, -1):
        if output[-k:] == sequence[:k]:
            return k
    return 0


class NemotronThinkingBudget(CustomLogitProcessor):
    def __call__(self, logits: torch.Tensor, custom_param_list: Any = None) -> torch.Tensor:
        rows: list[int] = []
        tokens: list[int] = []
        for row, params in enumerate(custom_param_list or []):
            forced = self._forced_token(params) if params else None
            if forced is not None:
                rows.append(row)
                tokens.append(forced)
        if rows:
            index = torch.tensor(rows, device=logits.device)
            logits[index] = float("-inf")
            logits[index, torch.tensor(tokens, device=logits.device)] = 0.0
        return logits

    @staticmethod
    def _forced_token(params: dict[str, Any]) -> int | None:
        if not isinstance(params.get(BUDGET_KEY), int):
            return None
        state = params.get(_STATE)
        if state is None:
            state = params[_STATE] = {
                "scanned": 0,
                "closed": False,
                "force_at": None,
                "enders": frozenset(params["close_ids"]),
                "newlines": frozenset(params["newline_ids"]),
            }
        if state["closed"]:
            return None
        output: list[int] = params["__req__"].output_ids
        for token in output[state["scanned"] :]:  # only tokens new since the last step
            if token in state["enders"]:
                state["closed"] = True
                return None
        state["scanned"] = len(output)
        generated = len(output)
        end: list[int] = params["end"]
        if state["force_at"] is None:
            if generated < params["force_by"]:
                line_done = bool(output) and output[-1] in state["newlines"]
                if generated < params["force_from"] or not line_done:
                    return None
            state["force_at"] = generated - _longest_overlap(output, end)
        position = generated - state["force_at"]
        return end[position] if position < len(end) else None
