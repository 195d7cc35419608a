"""Entry-point objects of the Nemotron plugins (cheap to import: no SGLang, no torch)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from omni_sglang.plugin_api import (
    LogitProcessorPlugin,
    ModalityProcessor,
    ModalityProcessorPlugin,
    ReasoningParser,
    ReasoningParserPlugin,
    ToolParser,
    ToolParserPlugin,
)
from omni_sglang_nemotron.reasoning import (
    THINK_END,
    NemotronV3ReasoningParser,
    prompt_opens_thinking,
)

#: Model card: reasoning on -> temperature 0.6, top_p 0.95; off -> temperature 0.2, top_k 1.
SAMPLING_THINKING = {"temperature": 0.6, "top_p": 0.95}
SAMPLING_NO_THINKING = {"temperature": 0.2, "top_k": 1}
END_OF_THINKING = ".\n\n" + THINK_END


#: custom_params key of the budget (reasoning tokens before the close is forced).
BUDGET_KEY = "reasoning_token_budget"
#: ``budget_mode`` that keeps NVIDIA's overshooting rule (the default is a maximum).
BUDGET_MODE_OVERSHOOT = "overshoot"
#: The model card's grace window: 1024 tokens past a budget of 16k.
NVIDIA_GRACE_TOKENS = 1024
GRACE_FRACTION = 16


class NemotronV3ReasoningPlugin(ReasoningParserPlugin):
    description = "Nemotron 3: <think> reasoning </think> answer"

    def create(self, *, prompt: str) -> ReasoningParser:
        return NemotronV3ReasoningParser(thinking=prompt_opens_thinking(prompt))

    def sampling_defaults(self, prompt: str) -> dict[str, Any]:
        return dict(SAMPLING_THINKING if prompt_opens_thinking(prompt) else SAMPLING_NO_THINKING)

    def reasoning_end_ids(self, prompt: str, tokenizer: Any) -> list[int] | None:
        if not prompt_opens_thinking(prompt):
            return None
        return list(tokenizer(THINK_END, add_special_tokens=False).input_ids)


class Qwen3CoderToolPlugin(ToolParserPlugin):
    description = "Nemotron 3 tool calls: qwen3-coder XML <tool_call><function=...>"

    def create(self, tools: Sequence[Mapping[str, Any]], *, parallel: bool = True) -> ToolParser:
        from omni_sglang_nemotron.tool_parser import Qwen3CoderToolParser

        return Qwen3CoderToolParser(tools, parallel=parallel)

    def constraint(
        self, tools: Sequence[Mapping[str, Any]], *, function: str | None, parallel: bool
    ) -> dict[str, str] | None:
        from omni_sglang_nemotron.tool_grammar import tool_call_structural_tag

        tag = tool_call_structural_tag(tools, function=function, parallel=parallel)
        return {"structural_tag": tag}

    def auto_constraint(
        self, tools: Sequence[Mapping[str, Any]], *, parallel: bool
    ) -> dict[str, str] | None:
        from omni_sglang_nemotron.tool_grammar import tool_call_structural_tag

        return {"structural_tag": tool_call_structural_tag(tools, auto=True, parallel=parallel)}


class NemotronThinkingBudgetPlugin(LogitProcessorPlugin):
    description = "Nemotron 3 thinking budget (NVIDIA's rule: finish the line, then close)"

    def __init__(self) -> None:
        self._vocab_cache: dict[int, dict[str, list[int]]] = {}

    def processor_class(self) -> type:
        from omni_sglang_nemotron.thinking_budget import NemotronThinkingBudget

        return NemotronThinkingBudget

    def _token_ids(self, tokenizer: Any) -> dict[str, list[int]]:
        """Ids read from the served tokenizer, never hard-coded; once per tokenizer."""
        key = id(tokenizer)
        if key not in self._vocab_cache:

            def single(text: str) -> int:
                ids = tokenizer(text, add_special_tokens=False).input_ids
                if len(ids) != 1:
                    raise ValueError(f"{text!r} is not one token in this tokenizer")
                return int(ids[0])

            vocab = len(tokenizer)
            texts = tokenizer.batch_decode([[i] for i in range(vocab)])
            self._vocab_cache[key] = {
                # Only </think> ends the reasoning: a <tool_call> written while reasoning
                # is reasoning to our parser too (a drafted call), so it is budgeted.
                "close_ids": [single(THINK_END)],
                "end_ids": list(tokenizer(END_OF_THINKING, add_special_tokens=False).input_ids),
                "newline_ids": [i for i, t in enumerate(texts) if "\n" in t],
            }
        return self._vocab_cache[key]

    def custom_params(self, request: Mapping[str, Any], tokenizer: Any) -> dict[str, Any] | None:
        """Keys read: thinking_token_budget (None: no cap), grace_tokens (None: the
        mode's default), budget_mode, prompt, and answer_reserve + max_new_tokens (cap
        the reasoning so the answer keeps room)."""
        if not prompt_opens_thinking(request.get("prompt", "")):
            return None  # no reasoning to cap
        budget = request.get("thinking_token_budget")
        budget = None if budget is None or budget < 0 else int(budget)
        ids = self._token_ids(tokenizer)
        overshoot = request.get("budget_mode") == BUDGET_MODE_OVERSHOOT
        reserve, max_new = request.get("answer_reserve", 0), request.get("max_new_tokens")
        room = None
        if reserve and max_new and max_new > reserve:
            # What the reasoning may take so that the answer keeps `reserve` tokens: all
            # but the closing tag here; NVIDIA's rule adds the whole end sequence after.
            room = max(0, max_new - reserve - (len(ids["end_ids"]) if overshoot else 1))
            budget = room if budget is None else min(budget, room)
        if budget is None:
            return None
        grace = request.get("grace_tokens")
        window = (
            plan_overshoot(budget, grace, ids) if overshoot else plan_maximum(budget, grace, ids)
        )
        if room is not None and overshoot:  # the grace window must fit in the room too
            window["force_by"] = min(window["force_by"], room)
        # Not SGLang's "thinking_budget" key: its grammar manager reads that one as a cap of
        # its own (ReasonerGrammarObject.max_think_tokens, no grace) on constrained requests.
        return {
            BUDGET_KEY: budget,
            **window,
            "close_ids": ids["close_ids"],
            "newline_ids": ids["newline_ids"],
        }


def plan_maximum(budget: int, grace: int | None, ids: Mapping[str, list[int]]) -> dict[str, Any]:
    """At most ``budget`` reasoning tokens, the end's text (``.\\n\\n``) included and the
    closing tag (markup) not: the end starts by ``budget - len(text)`` at the latest, or
    is the closing tag alone where the budget is smaller than its text. ``grace``
    (default: a sixteenth of the budget, the model card's 1024 of 16k) is a window
    before that in which the model's first line end starts it."""
    text = len(ids["end_ids"]) - 1
    end = ids["end_ids"] if budget >= text else ids["close_ids"][:1]
    force_by = budget - (len(end) - 1)
    grace = budget // GRACE_FRACTION if grace is None else grace
    return {"end": end, "force_from": max(0, force_by - grace), "force_by": force_by}


def plan_overshoot(budget: int, grace: int | None, ids: Mapping[str, list[int]]) -> dict[str, Any]:
    """NVIDIA's rule: ``budget`` tokens, then up to ``grace`` (default 1024) more to
    finish the line, then the whole end sequence: up to ``budget + grace + 4`` tokens."""
    if budget == 0:
        return {"end": ids["close_ids"][:1], "force_from": 0, "force_by": 0}
    grace = NVIDIA_GRACE_TOKENS if grace is None else grace
    return {"end": ids["end_ids"], "force_from": budget, "force_by": budget + grace}


class NemotronOmniPlugin(ModalityProcessorPlugin):
    description = (
        "Nemotron 3 Nano Omni media: dynamic-resolution images, 2-frame video tubelets "
        "with EVS, Parakeet audio (12.5 tokens/s)"
    )

    #: The Parakeet encoder's clip length (SGLang's and vLLM's processors: 30 s).
    transcription_window_seconds = 30.0

    def transcription_prompt(
        self, *, translate: bool, language: str | None, prompt: str | None
    ) -> str:
        # The NIM document's own audio request asks "Transcribe and summarize this audio.";
        # a transcript wants the words only.
        if translate:
            ask = "Translate the speech in this audio into English."
        elif language:
            ask = f"Transcribe the speech in this audio verbatim; it is in {language}."
        else:
            ask = "Transcribe the speech in this audio verbatim."
        ask += " Reply with the text only."
        return f"{ask}\nContext: {prompt}" if prompt else ask

    def create(self, model_config: Mapping[str, Any], tokenizer: Any) -> ModalityProcessor:
        """``model_config``: the checkpoint's config.json mapping, plus ``max_model_len``
        (the served context length, SGLang's image token budget; 8192 if absent)."""
        from omni_sglang_nemotron.modality import NemotronOmniProcessor

        return NemotronOmniProcessor.from_config(model_config, tokenizer)
