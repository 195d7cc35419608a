"""SGLang's streamed output dicts -> our per-sample ``EngineOutput`` deltas, and the
aborts SGLang means as a request's error (4xx or 5xx), told apart from the others."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omni_sglang.engines.base import EngineOutput, FinishReason
from omni_sglang.errors import (
    ClientError,
    ContextLengthExceededError,
    EngineError,
    InvalidRequestError,
    OmniError,
    ServiceUnavailableError,
)

#: Chunk key the pump adds: how many output ids the chunk had when SGLang yielded it.
IDS_AT_CHUNK = "_omni_ids_at_chunk"


def _finish_reason(meta: dict[str, Any]) -> FinishReason | None:
    raw = meta.get("finish_reason")
    if not raw:
        return None
    return FinishReason(raw.get("type", "stop"), raw.get("matched"), raw.get("message"))


def abort_status(meta: dict[str, Any]) -> int | None:
    raw = meta.get("finish_reason") or {}
    status = raw.get("status_code") if isinstance(raw, dict) else None
    return int(status) if status is not None else None


#: The modalities SGLang's ``meta_info`` counts as ``<modality>_tokens``.
MODALITIES = ("image", "video", "audio")


def media_tokens(meta: dict[str, Any]) -> dict[str, int]:
    """SGLang puts a modality's count in ``meta_info`` only when the prompt has it."""
    return {kind: int(meta[f"{kind}_tokens"]) for kind in MODALITIES if meta.get(f"{kind}_tokens")}


@dataclass
class _Sent:
    """How much of one sample's cumulative output was already passed on."""

    text: int = 0
    ids: int = 0
    logprobs: int = 0
    input_logprobs: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finished: bool = False


@dataclass
class StreamDeltas:
    """SGLang's streamed dicts -> our per-sample deltas.

    By default SGLang streams cumulative ``text`` / ``output_ids`` / output logprobs per
    sample; with ``--incremental-streaming-output`` it streams deltas. ``index`` names
    the sample when ``n`` > 1."""

    incremental: bool
    samples: dict[int, _Sent] = field(default_factory=dict)

    def __call__(self, chunk: dict[str, Any]) -> EngineOutput:
        index = int(chunk.get("index", 0))
        sent = self.samples.setdefault(index, _Sent())
        meta = chunk.get("meta_info", {})
        text: str = chunk.get("text") or ""
        ids: list[int] = chunk.get("output_ids") or []
        logprobs = meta.get("output_token_logprobs")
        top = meta.get("output_top_logprobs")
        if self.incremental:
            ids = list(ids)
        else:
            # A cumulative chunk's output_ids is SGLang's live list, which keeps growing
            # after the chunk was made; its length then is what belongs with its text.
            end = chunk.get(IDS_AT_CHUNK, len(ids))
            text, ids = text[sent.text :], ids[sent.ids : end]
            start = sent.logprobs
            logprobs = logprobs[start:] if logprobs is not None else None
            top = top[start:] if top is not None else None
            sent.text += len(text)
            sent.ids += len(ids)
            sent.logprobs += len(logprobs or [])
        input_logprobs = None
        if not sent.input_logprobs and meta.get("input_token_logprobs") is not None:
            input_logprobs, sent.input_logprobs = meta["input_token_logprobs"], True
        sent.prompt_tokens = int(meta.get("prompt_tokens", sent.prompt_tokens))
        sent.completion_tokens = int(meta.get("completion_tokens", sent.completion_tokens))
        finish = _finish_reason(meta)
        sent.finished = finish is not None
        return EngineOutput(
            index=index,
            text=text,
            token_ids=ids,
            prompt_tokens=sent.prompt_tokens,
            completion_tokens=sent.completion_tokens,
            cached_tokens=int(meta.get("cached_tokens", 0)),
            media_tokens=media_tokens(meta),
            finish_reason=finish,
            output_token_logprobs=logprobs,
            input_token_logprobs=input_logprobs,
            output_top_logprobs=top,
        )

    def aborted(self, samples: int) -> list[EngineOutput]:
        """A final ``abort`` output for each sample that had not finished, as the CPU
        engine ends an aborted request."""
        outputs = []
        for index in range(samples):
            sent = self.samples.setdefault(index, _Sent())
            if not sent.finished:
                sent.finished = True
                outputs.append(
                    EngineOutput(
                        index=index,
                        text="",
                        token_ids=[],
                        prompt_tokens=sent.prompt_tokens,
                        completion_tokens=sent.completion_tokens,
                        finish_reason=FinishReason("abort", message="aborted"),
                    )
                )
        return outputs


def refusal(message: str) -> ClientError:
    # SGLang's wording for a prompt beyond the context, or beyond its KV pool when that
    # is the smaller: "Input length (N tokens) exceeds the maximum allowed length".
    if "context length" in message or "maximum allowed length" in message:
        return ContextLengthExceededError(message)
    return InvalidRequestError(message)


def failed_in_sglang(finish: FinishReason | None, status: int | None) -> OmniError | None:
    """An ``abort`` SGLang's scheduler gave an HTTP status is that request's error, as
    SGLang's own server answers it: 4xx the client's (a grammar that does not compile, a
    request it cannot take), 503 a retry (retracted under KV pressure), other 5xx the
    engine's (out of memory, a logits processor that raised). Aborts without a status (a
    disconnect, ``abort_request``) stay a finish reason."""
    if finish is None or finish.type != "abort" or status is None or status < 400:
        return None
    message = finish.message or "SGLang aborted the request"
    if status < 500:
        return refusal(message)
    if status == 503:
        return ServiceUnavailableError(message)
    return EngineError(message)
