"""Our Nemotron pieces inside SGLang: the ``sglang.srt.plugins`` entry point.

SGLang runs :func:`register` in every one of its processes (engine, scheduler,
detokenizer; they are spawned, so patching the parent process would not reach them),
honouring its ``SGLANG_PLUGINS`` allow-list. It adds our reasoning parser to SGLang's
``ReasoningParser.DetectorMap`` as ``omni_nemotron_v3`` and our tool-call parser to its
``FunctionCallParser.ToolCallParserEnum`` as ``omni_qwen3_coder``, so SGLang's own
endpoints, ``--reasoning-parser`` and ``--tool-call-parser`` can use the exact rules our
server applies.

It also puts our Nemotron Omni multimodal processor in place of SGLang's, so per-request
video options reach it (``register_media_processor``), and enters Nano Omni's architecture
in SGLang's registry of hybrid models, so its radix cache keeps Mamba states
(``register_hybrid_cache``).

The thinking-budget processor needs no registration: it travels with each request as
``CustomLogitProcessor.to_str()`` and SGLang imports its class by reference.

This module imports SGLang: only SGLang processes load it.
"""

from __future__ import annotations

import logging
from typing import Any

from sglang.srt.parser.reasoning_parser import (
    BaseReasoningFormatDetector,
    ReasoningParser,
    StreamingParseResult,
)

from omni_sglang_nemotron.reasoning import THINK_END, THINK_START, NemotronV3ReasoningParser

logger = logging.getLogger(__name__)

#: Our parser's name in SGLang's registry (``--reasoning-parser omni_nemotron_v3``).
REASONING_PARSER_KEY = "omni_nemotron_v3"


class OmniNemotronV3Detector(BaseReasoningFormatDetector):
    """SGLang's detector interface backed by :class:`NemotronV3ReasoningParser`.

    The base class supplies what SGLang reads besides the three parse methods (the
    think tokens, ``get_think_end_token_ids`` for its grammar gating, the
    ``enable_thinking`` default); parsing itself is ours. Unlike SGLang's ``nemotron_3``,
    a ``<tool_call>`` written inside the reasoning stays reasoning.
    """

    # Set by the (untyped) base class; declared so the type checker knows them.
    _in_reasoning: bool
    _accumulated_reasoning: str

    def __init__(
        self,
        stream_reasoning: bool = True,
        force_reasoning: bool = False,
        continue_final_message: bool = False,
        previous_content: str = "",
        force_nonempty_content: bool = False,
    ):
        super().__init__(
            THINK_START,
            THINK_END,
            force_reasoning=force_reasoning,
            stream_reasoning=stream_reasoning,
            continue_final_message=continue_final_message,
            previous_content=previous_content,
            reasoning_default="enable_thinking",
            force_nonempty_content=force_nonempty_content,
        )
        # The base class worked out from force_reasoning and a continued message whether
        # the output starts inside the reasoning.
        self._starts_in_reasoning = self._in_reasoning
        self._parser = NemotronV3ReasoningParser(thinking=self._starts_in_reasoning)
        self._unsent_reasoning = ""  # held back until the end tag when not streaming it

    def detect_and_parse(self, text: str) -> StreamingParseResult:
        split = NemotronV3ReasoningParser(thinking=self._starts_in_reasoning).parse(text)
        result = StreamingParseResult(normal_text=split.content, reasoning_text=split.reasoning)
        return self._maybe_apply_force_nonempty_content(result)

    def parse_streaming_increment(self, new_text: str) -> StreamingParseResult:
        split = self._parser.feed(new_text)
        self._in_reasoning = self._parser.in_reasoning
        reasoning = self._release(split.reasoning)
        if self._force_nonempty_content:
            # Kept so that finish() can turn unclosed reasoning into content, as SGLang's.
            self._accumulated_reasoning = (
                self._accumulated_reasoning + reasoning if self._in_reasoning else ""
            )
        return StreamingParseResult(normal_text=split.content, reasoning_text=reasoning)

    def _release(self, reasoning: str) -> str:
        """With stream_reasoning off, SGLang expects the reasoning in one piece once it
        closes; with it on, as it comes."""
        if self.stream_reasoning:
            return reasoning
        self._unsent_reasoning += reasoning
        if self._in_reasoning:
            return ""
        out, self._unsent_reasoning = self._unsent_reasoning, ""
        return out

    def finish(self) -> StreamingParseResult:
        split = self._parser.finish()
        reasoning = self._unsent_reasoning + split.reasoning
        self._unsent_reasoning = ""
        if self._in_reasoning and self._force_nonempty_content:
            content = self._accumulated_reasoning + reasoning
            self._accumulated_reasoning = ""
            return StreamingParseResult(normal_text=content)
        return StreamingParseResult(normal_text=split.content, reasoning_text=reasoning)


def register_reasoning_parsers() -> None:
    ReasoningParser.DetectorMap[REASONING_PARSER_KEY] = OmniNemotronV3Detector


def register_tool_parsers() -> None:
    from sglang.srt.function_call.function_call_parser import FunctionCallParser

    from omni_sglang_nemotron.sglang_tools import TOOL_PARSER_KEY, OmniQwen3CoderDetector

    FunctionCallParser.ToolCallParserEnum[TOOL_PARSER_KEY] = OmniQwen3CoderDetector


def register_media_processor() -> None:
    """Our Nemotron Omni processor in SGLang's place (``sglang_processor``): hooked after
    ``import_processors``, since SGLang re-imports its built-ins after plugins load and a
    direct ``PROCESSOR_MAPPING`` write would be undone; and the model's EVS pruning at
    the rate each video item names (scheduler process)."""
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(PROCESSOR_TARGET, _install_processor, HookType.AFTER)
    HookRegistry.register(EVS_TARGET, _evs_video_at_item_rate, HookType.AROUND)


# The hooks import our processor module (and through it SGLang's model code) only when
# they run, not when the plugin loads in every SGLang process.
PROCESSOR_TARGET = "sglang.srt.managers.multimodal_processor.import_processors"
EVS_TARGET = "sglang.srt.multimodal.evs.evs_module.EVS.evs_video"


def _install_processor(*_args: Any, **_kwargs: Any) -> None:
    from omni_sglang_nemotron.sglang_processor import install_processor

    install_processor()


def _evs_video_at_item_rate(original: Any, model: Any, items: list[Any]) -> Any:
    from omni_sglang_nemotron.sglang_processor import evs_video_at_item_rate

    return evs_video_at_item_rate(original, model, items)


#: Nano Omni's architecture name. SGLang 0.5.23 lists Nemotron-H and Nemotron Omni
#: (``NemotronH_Omni_Reasoning_V3``) among the hybrid models its Mamba radix cache serves,
#: not this sibling: the model got a radix tree without Mamba snapshots, so never a
#: prefix hit (measured: 0 cached tokens when a 2,003-token prompt came again).
OMNI_ARCH = "NemotronH_Nano_Omni_Reasoning_V3"
MAMBA2_BACKEND = "sglang.srt.layers.attention.hybrid_linear_attn_backend.Mamba2AttnBackend"


def register_hybrid_cache() -> None:
    """Nano Omni in SGLang's public registry of hybrid models (``register_linear_attn_model``)
    as its sibling is listed in SGLang's own tables: a Mamba radix cache with extra_buffer
    snapshots (SGLang's pick for Nemotron-H on GPUs). The backend class is what SGLang
    builds for any Mamba-2 config anyway (it checks for one before the registry)."""
    from sglang.srt.configs.linear_attn_model_registry import (
        LinearAttnModelSpec,
        get_linear_attn_spec_by_arch,
        register_linear_attn_model,
    )
    from sglang.srt.configs.nano_nemotron_vl import NemotronH_Nano_Omni_Reasoning_V3_Config

    if get_linear_attn_spec_by_arch(OMNI_ARCH) is not None:
        return  # a later SGLang lists it itself, or a second call
    spec = LinearAttnModelSpec(
        config_class=NemotronH_Nano_Omni_Reasoning_V3_Config,
        backend_class_name=MAMBA2_BACKEND,
        arch_names=[OMNI_ARCH],
        uses_mamba_radix_cache=True,
        support_mamba_cache_extra_buffer=True,
    )
    register_linear_attn_model(spec)


def register() -> None:
    """The ``sglang.srt.plugins`` entry point (SGLang calls it once per process)."""
    register_reasoning_parsers()
    register_tool_parsers()
    register_media_processor()
    register_hybrid_cache()
    logger.debug("omni-sglang Nemotron plugins registered in SGLang")
