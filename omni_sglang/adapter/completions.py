"""A validated text-completion request -> one ``EngineRequest`` per prompt."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from omni_sglang.adapter.sampling import (
    custom_processor,
    resolve_max_new_tokens,
    sampling_params,
    seed_warnings,
)
from omni_sglang.engines.base import EngineRequest
from omni_sglang.engines.request_checks import check_vocab_ids
from omni_sglang.errors import InvalidRequestError, UnsupportedFieldError
from omni_sglang.protocol.openai import CompletionRequest
from omni_sglang.state import ServerState

MAX_PROMPTS_PER_REQUEST = 64


@dataclass
class PreparedCompletion:
    requests: list[EngineRequest]
    prompt_texts: list[str]
    n: int
    #: Sent as ``Warning`` headers, as for chat.
    warnings: list[str] = field(default_factory=list)


def _prompts(req: CompletionRequest, state: ServerState) -> list[list[int]]:
    tokenizer = state.tokenizer
    raw = req.prompt
    if isinstance(raw, str):
        items: list[str | list[int]] = [raw]
    elif all(isinstance(p, int) for p in raw):
        items = [list(raw)]  # type: ignore[arg-type]
    else:
        items = list(raw)  # type: ignore[arg-type]
    if len(items) > MAX_PROMPTS_PER_REQUEST:
        raise InvalidRequestError(
            f"{len(items)} prompts in one request; at most {MAX_PROMPTS_PER_REQUEST}", "prompt"
        )
    out = []
    for item in items:
        if isinstance(item, str):
            state.check_prompt_chars(len(item))
            ids = tokenizer(item, add_special_tokens=False).input_ids
            if not ids:
                raise InvalidRequestError("'prompt' must not be empty", "prompt")
            out.append(ids)
        else:
            out.append(item)
    return out


def prepare_completion(req: CompletionRequest, state: ServerState) -> PreparedCompletion:
    state.check_model(req.model)
    if req.suffix:
        raise UnsupportedFieldError("'suffix' (fill-in-the-middle) is not supported", "suffix")
    if req.best_of is not None and req.best_of != req.n:
        raise UnsupportedFieldError("'best_of' different from 'n' is not supported", "best_of")
    tokenizer = state.tokenizer
    context = state.model_info.max_model_len
    prompt_ids = _prompts(req, state)
    processor = custom_processor(req, state.config.enable_custom_logit_processor)
    requests, texts = [], []
    base = f"cmpl-{uuid.uuid4().hex}"
    for i, ids in enumerate(prompt_ids):
        check_vocab_ids(ids, len(tokenizer), "prompt")
        max_new = resolve_max_new_tokens(req.max_tokens, len(ids), context)
        params = sampling_params(
            req,
            max_new_tokens=max_new,
            max_n=state.config.max_n,
            max_stops=state.config.max_stop_sequences,
        )
        requests.append(
            EngineRequest(
                rid=f"{base}-{i}",
                input_ids=ids,
                sampling_params=params,
                custom_logit_processor=processor,
                return_logprob=req.logprobs is not None,
                top_logprobs_num=req.logprobs or 0,
                # echo: the prompt's logprobs too, from its first token (SGLang's rule).
                logprob_start_len=0 if req.echo and req.logprobs is not None else -1,
            )
        )
        texts.append(tokenizer.decode(ids) if req.echo else "")
    return PreparedCompletion(requests, texts, req.n, seed_warnings(req, state.engine.honours_seed))
