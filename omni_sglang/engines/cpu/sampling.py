"""SGLang's sampling parameters, validated, and the per-step logits pipeline.

The order follows SGLang's sampler so both engines give the same distribution for the
same parameters: penalties, min-new-tokens masking and ``logit_bias`` first
(``SamplingBatchInfo.apply_logits_bias``), then the custom logits processor, then
temperature, then top-k / top-p / min-p, then the draw.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import torch

from omni_sglang.engines.cpu.grammar import GrammarSpec, grammar_spec
from omni_sglang.errors import InvalidRequestError, UnsupportedFieldError
from omni_sglang.sglang_source import sampling_params_keys

#: SGLang ``SamplingParams`` keys this engine implements.
SUPPORTED_KEYS = {
    "max_new_tokens",
    "min_new_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "stop",
    "stop_token_ids",
    "ignore_eos",
    "skip_special_tokens",
    "spaces_between_special_tokens",
    "no_stop_trim",
    "n",
    "sampling_seed",
    "logit_bias",
    "custom_params",
    "stream_interval",
    "json_schema",
    "regex",
    "ebnf",
    "structural_tag",
}


def unimplemented_keys() -> frozenset[str]:
    """SGLang's ``sampling_params`` keys (its ``SamplingParams``, as installed) this engine
    does not implement (``stop_regex``, beam search, watermarking, ...): a request that
    sets one is refused rather than silently served without it."""
    return sampling_params_keys() - SUPPORTED_KEYS


_GREEDY_EPS = 1e-6


def _number(params: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = params.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(f"sampling_params.{key} must be a number", param=key)
    if not lo <= value <= hi:
        raise InvalidRequestError(
            f"sampling_params.{key} must be within [{lo}, {hi}]; got {value}", param=key
        )
    return float(value)


def _integer(params: dict[str, Any], key: str, default: int | None, lo: int) -> int | None:
    value = params.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"sampling_params.{key} must be an integer", param=key)
    if value < lo:
        raise InvalidRequestError(f"sampling_params.{key} must be >= {lo}; got {value}", param=key)
    return value


@dataclass
class SamplingConfig:
    max_new_tokens: int | None = 128
    min_new_tokens: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    min_p: float = 0.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    repetition_penalty: float = 1.0
    stop: list[str] = field(default_factory=list)
    stop_token_ids: set[int] = field(default_factory=set)
    ignore_eos: bool = False
    skip_special_tokens: bool = True
    no_stop_trim: bool = False
    n: int = 1
    sampling_seed: int | None = None
    logit_bias: dict[int, float] = field(default_factory=dict)
    custom_params: dict[str, Any] | None = None
    grammar: GrammarSpec | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature < _GREEDY_EPS or self.top_k == 1

    @classmethod
    def from_sglang(cls, params: dict[str, Any] | None) -> SamplingConfig:
        params = dict(params or {})
        # Empty values ([] / "" / null) mean "unset": SGLang's own clients send them.
        missing = sorted(k for k in unimplemented_keys() if params.get(k))
        if missing:
            raise UnsupportedFieldError(
                f"the CPU engine does not implement {', '.join(missing)}", param=missing[0]
            )
        unknown = sorted(set(params) - SUPPORTED_KEYS - unimplemented_keys())
        if unknown:
            raise InvalidRequestError(
                f"unknown sampling_params key(s): {', '.join(unknown)}; "
                f"supported: {', '.join(sorted(SUPPORTED_KEYS))}",
                param=unknown[0],
            )
        stop = params.get("stop") or []
        stop = [stop] if isinstance(stop, str) else list(stop)
        if not all(isinstance(s, str) and s for s in stop):
            raise InvalidRequestError("sampling_params.stop must be non-empty strings", "stop")
        stop_ids = params.get("stop_token_ids") or []
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in stop_ids):
            raise InvalidRequestError("stop_token_ids must be integers", "stop_token_ids")
        bias_raw = params.get("logit_bias") or {}
        try:
            bias = {int(k): float(v) for k, v in bias_raw.items()}
        except (TypeError, ValueError, AttributeError):
            raise InvalidRequestError(
                "logit_bias maps token ids to numbers", "logit_bias"
            ) from None
        custom = params.get("custom_params")
        if custom is not None and not isinstance(custom, dict):
            raise InvalidRequestError("sampling_params.custom_params must be an object")
        top_k = _integer(params, "top_k", -1, -1)
        if top_k == 0:
            raise InvalidRequestError("sampling_params.top_k must be -1 or >= 1", "top_k")
        seed = params.get("sampling_seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise InvalidRequestError("sampling_params.sampling_seed must be an integer", "seed")
        return cls(
            max_new_tokens=_integer(params, "max_new_tokens", 128, 0),
            min_new_tokens=_integer(params, "min_new_tokens", 0, 0) or 0,
            temperature=_number(params, "temperature", 1.0, 0.0, 100.0),
            top_p=_number(params, "top_p", 1.0, 1e-9, 1.0),
            top_k=top_k if top_k is not None else -1,
            min_p=_number(params, "min_p", 0.0, 0.0, 1.0),
            frequency_penalty=_number(params, "frequency_penalty", 0.0, -2.0, 2.0),
            presence_penalty=_number(params, "presence_penalty", 0.0, -2.0, 2.0),
            repetition_penalty=_number(params, "repetition_penalty", 1.0, 1e-6, 2.0),
            stop=stop,
            stop_token_ids=set(stop_ids),
            ignore_eos=bool(params.get("ignore_eos", False)),
            skip_special_tokens=bool(params.get("skip_special_tokens", True)),
            no_stop_trim=bool(params.get("no_stop_trim", False)),
            n=_integer(params, "n", 1, 1) or 1,
            sampling_seed=seed,
            logit_bias=bias,
            custom_params=custom,
            grammar=grammar_spec(params),
        )


class SequenceSampler:
    """Per-sequence sampling state: token counts for penalties and its own RNG."""

    def __init__(self, config: SamplingConfig, vocab_size: int, index: int):
        self.config = config
        self._counts = torch.zeros(vocab_size, dtype=torch.float32)
        # SGLang's repetition penalizer counts output tokens only, not the prompt.
        self._seen = torch.zeros(vocab_size, dtype=torch.bool)
        seed = config.sampling_seed if config.sampling_seed is not None else random.getrandbits(62)
        self._generator = torch.Generator().manual_seed(seed + index)
        self._bias: torch.Tensor | None = None
        if config.logit_bias:
            self._bias = torch.zeros(vocab_size, dtype=torch.float32)
            for token_id, value in config.logit_bias.items():
                if 0 <= token_id < vocab_size:
                    self._bias[token_id] = value

    def observe(self, token_id: int) -> None:
        self._counts[token_id] += 1
        self._seen[token_id] = True

    def bias_logits(self, logits: torch.Tensor, n_generated: int, stop_ids: set[int]) -> None:
        """Penalties, min-new-tokens and logit_bias, in place on a [vocab] tensor."""
        cfg = self.config
        if cfg.frequency_penalty:
            logits -= cfg.frequency_penalty * self._counts
        if cfg.presence_penalty:
            logits -= cfg.presence_penalty * (self._counts > 0).float()
        if cfg.repetition_penalty != 1.0:
            seen = logits[self._seen]
            logits[self._seen] = torch.where(
                seen > 0, seen / cfg.repetition_penalty, seen * cfg.repetition_penalty
            )
        if n_generated < cfg.min_new_tokens and stop_ids:
            logits[list(stop_ids)] = float("-inf")
        if self._bias is not None:
            logits += self._bias

    def logprobs(self, logits: torch.Tensor) -> torch.Tensor:
        """The distribution a sampled token's logprob is read from, as SGLang's sampler
        reports it: after penalties, bias, grammar and custom processors, scaled by the
        temperature (greedy: not scaled, SGLang's all-greedy batch); masked tokens -inf."""
        cfg = self.config
        return torch.log_softmax(logits / (1.0 if cfg.greedy else cfg.temperature), dim=-1)

    def draw(self, logits: torch.Tensor) -> int:
        cfg = self.config
        if cfg.greedy:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / cfg.temperature, dim=-1)
        if cfg.top_k > 0 and cfg.top_k < probs.numel():
            kth = torch.topk(probs, cfg.top_k).values[-1]
            probs = torch.where(probs < kth, torch.zeros_like(probs), probs)
        if cfg.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            cumulative = torch.cumsum(sorted_probs, dim=-1)
            # Keep the smallest prefix whose mass reaches top_p (the first token always).
            drop = (cumulative - sorted_probs) > cfg.top_p * cumulative[-1]
            sorted_probs[drop] = 0.0
            probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
        if cfg.min_p > 0.0:
            probs = torch.where(probs < cfg.min_p * probs.max(), torch.zeros_like(probs), probs)
        return int(torch.multinomial(probs, 1, generator=self._generator))
