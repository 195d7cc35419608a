"""Test-only plugins, one of each kind, as a third party would write them.

``ForceTokens`` is also how tests make the tiny random model "say" a known text: it is a
real SGLang ``CustomLogitProcessor`` that forces the token ids given in its
``custom_params``, so the whole serving path (engine, parsers, HTTP) stays real.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from omni_sglang.engines.base import Engine, EngineOutput, EngineRequest, FinishReason, ModelInfo
from omni_sglang.plugin_api import (
    EnginePlugin,
    LogitProcessorPlugin,
    MediaItem,
    ModalityProcessor,
    ModalityProcessorPlugin,
    ProcessedPrompt,
    ReasoningParser,
    ReasoningParserPlugin,
    ReasoningSplit,
    ToolCall,
    ToolCallDelta,
    ToolParser,
    ToolParseResult,
    ToolParserPlugin,
    ToolStreamStep,
)

# -- engine: echoes the prompt's characters back, one per step ---------------------------


class _CharTokenizer:
    def __call__(self, text: str, add_special_tokens: bool = False) -> Any:
        return type("Enc", (), {"input_ids": [ord(c) for c in text]})()

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in ids)

    def __len__(self) -> int:
        return 0x110000

    def apply_chat_template(self, messages: list[dict[str, Any]], **_: Any) -> str:
        return "".join(str(m["content"]) for m in messages if isinstance(m["content"], str))


class EchoEngine(Engine):
    def __init__(self) -> None:
        self.tokenizer = _CharTokenizer()

    async def start(self) -> None:
        pass

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineOutput]:
        ids = request.input_ids or self.tokenizer(request.prompt or "").input_ids
        limit = request.sampling_params.get("max_new_tokens", 16)
        out = ids[:limit]
        for i, token in enumerate(out):
            last = i == len(out) - 1
            yield EngineOutput(
                index=0,
                text=chr(token),
                token_ids=[token],
                prompt_tokens=len(ids),
                completion_tokens=i + 1,
                finish_reason=FinishReason("length" if len(ids) > limit else "stop")
                if last
                else None,
            )

    async def abort(self, rid: str) -> None:
        pass

    def model_info(self) -> ModelInfo:
        return ModelInfo(model_path="echo", max_model_len=4096, vocab_size=0x110000)

    async def health(self) -> bool:
        return True

    async def shutdown(self) -> None:
        pass


class EchoEnginePlugin(EnginePlugin):
    description = "echoes the prompt (tests)"

    def build(self, config: Any) -> Engine:
        return EchoEngine()


# -- reasoning parser: [[...]] is reasoning ------------------------------------------------


class BracketReasoning(ReasoningParser):
    def __init__(self) -> None:
        self._buf = ""
        self._inside = False

    @property
    def in_reasoning(self) -> bool:
        return self._inside

    def feed(self, text: str) -> ReasoningSplit:
        self._buf += text
        out = ReasoningSplit()
        while True:
            marker = "]]" if self._inside else "[["
            pos = self._buf.find(marker)
            if pos == -1:
                keep = 1 if self._buf.endswith(marker[0]) else 0
                ready, self._buf = (
                    self._buf[: len(self._buf) - keep],
                    self._buf[len(self._buf) - keep :],
                )
                if self._inside:
                    out.reasoning += ready
                else:
                    out.content += ready
                return out
            if self._inside:
                out.reasoning += self._buf[:pos]
            else:
                out.content += self._buf[:pos]
            self._buf = self._buf[pos + 2 :]
            self._inside = not self._inside

    def finish(self) -> ReasoningSplit:
        rest, self._buf = self._buf, ""
        return ReasoningSplit(reasoning=rest) if self._inside else ReasoningSplit(content=rest)


class BracketReasoningPlugin(ReasoningParserPlugin):
    description = "[[reasoning]] content (tests)"

    def create(self, *, prompt: str) -> ReasoningParser:
        return BracketReasoning()


# -- tool parser: lines 'CALL {"name": ..., "arguments": {...}}' ------------------------------


class CallLines(ToolParser):
    def __init__(self) -> None:
        self._buf = ""
        self._count = 0

    def _line(self, line: str) -> ToolStreamStep:
        if line.startswith("CALL "):
            try:
                call = json.loads(line[5:])
                delta = ToolCallDelta(self._count, call["name"], json.dumps(call["arguments"]))
                self._count += 1
                return ToolStreamStep(calls=[delta])
            except (ValueError, KeyError):
                pass
        return ToolStreamStep(content=line)

    def feed(self, text: str) -> ToolStreamStep:
        self._buf += text
        out = ToolStreamStep()
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            step = self._line(line)
            out.content += step.content + ("\n" if step.content or not step.calls else "")
            out.calls += step.calls
        return out

    def finish(self) -> ToolStreamStep:
        rest, self._buf = self._buf, ""
        return self._line(rest) if rest else ToolStreamStep()

    def parse(self, text: str) -> ToolParseResult:
        head, tail = self.feed(text), self.finish()
        steps = head.calls + tail.calls
        return ToolParseResult(
            content=head.content + tail.content,
            calls=[ToolCall(c.name or "", c.arguments) for c in steps],
        )


class CallLineToolPlugin(ToolParserPlugin):
    description = "CALL {json} lines (tests)"

    def create(self, tools: Sequence[Mapping[str, Any]], *, parallel: bool = True) -> ToolParser:
        return CallLines()


# -- logits processor: force a token sequence -------------------------------------------------


def _force_tokens_class() -> type:
    from sglang.srt.sampling.custom_logit_processor import CustomLogitProcessor

    class ForceTokens(CustomLogitProcessor):
        """Forces ``custom_params["force"][i]`` as the i-th output token, then EOS
        (``custom_params["eos"]``) if given, else leaves the model free. With
        ``custom_params["raise_at"]`` it raises from that output step on (fault tests)."""

        def __call__(self, logits: Any, custom_param_list: Any = None) -> Any:
            for row, params in enumerate(custom_param_list or []):
                if not params or "__req__" not in params:
                    continue
                step = len(params["__req__"].output_ids)
                if params.get("raise_at") is not None and step >= params["raise_at"]:
                    raise RuntimeError(f"asked to raise at step {step}")
                if "force" not in params:
                    continue
                sequence = list(params["force"])
                if params.get("eos") is not None:
                    sequence.append(params["eos"])
                if step < len(sequence):
                    logits[row, :] = float("-inf")
                    logits[row, sequence[step]] = 0.0
            return logits

    ForceTokens.__module__ = __name__
    ForceTokens.__qualname__ = "ForceTokens"
    return ForceTokens


def __getattr__(name: str) -> Any:
    # Built on first use so that importing this package does not import SGLang; the
    # class must still be importable by name for SGLang's pickling (to_str/from_str).
    if name == "ForceTokens":
        cls = _force_tokens_class()
        globals()["ForceTokens"] = cls
        return cls
    raise AttributeError(name)


class ForceTokensPlugin(LogitProcessorPlugin):
    description = "forces a token sequence (tests)"

    def processor_class(self) -> type:
        return __getattr__("ForceTokens")

    def custom_params(self, request: Mapping[str, Any], tokenizer: Any) -> dict[str, Any] | None:
        text = request.get("force_text")
        if not text:
            return None
        return {"force": tokenizer(text, add_special_tokens=False).input_ids}


# -- modality processor: counts media placeholders ----------------------------------------------


class CountMedia(ModalityProcessor):
    modalities = ("image", "video", "audio")

    def __init__(self, tokenizer: Any):
        self._tokenizer = tokenizer

    def process(self, prompt: str, items: Sequence[MediaItem]) -> ProcessedPrompt:
        ids = self._tokenizer(prompt, add_special_tokens=False).input_ids
        return ProcessedPrompt(input_ids=ids, items=list(items))


class CountMediaPlugin(ModalityProcessorPlugin):
    description = "tokenizes the prompt, passes media through (tests)"

    def create(self, model_config: Mapping[str, Any], tokenizer: Any) -> ModalityProcessor:
        return CountMedia(tokenizer)
