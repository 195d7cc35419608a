"""Constrained decoding in the CPU engine with xgrammar, the library SGLang uses.

SGLang's ``sampling_params`` keys ``json_schema``, ``regex``, ``ebnf`` and
``structural_tag`` (xgrammar's structural-tag JSON) mean the same here as in SGLang's
scheduler: the token mask is applied with the penalties, before the custom logits
processor. SGLang's reasoning gate is honoured too: when ``custom_params``
carries ``__sglang_reasoning_end_token_ids``, the grammar only starts once the output
has closed its reasoning with those tokens (so a model may think freely, then answer
in the constrained format).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import torch

from omni_sglang.engines.base import REASONING_END_KEY
from omni_sglang.engines.grammar_tokens import grammar_tokenizer_info
from omni_sglang.errors import InvalidRequestError
from omni_sglang.sglang_source import check_json_schema_as_sglang

__all__ = ["REASONING_END_KEY", "GrammarCompiler", "GrammarSpec", "grammar_spec"]
GRAMMAR_KEYS = ("json_schema", "regex", "ebnf", "structural_tag")


@dataclass(frozen=True)
class GrammarSpec:
    kind: str  # one of GRAMMAR_KEYS
    source: str


def grammar_spec(params: dict[str, Any]) -> GrammarSpec | None:
    given = [k for k in GRAMMAR_KEYS if params.get(k) is not None]
    if len(given) > 1:
        raise InvalidRequestError(
            f"only one of {', '.join(GRAMMAR_KEYS)} may be set; got {', '.join(given)}", given[1]
        )
    if not given:
        return None
    source = params[given[0]]
    if not isinstance(source, str):
        raise InvalidRequestError(f"sampling_params.{given[0]} must be a string", given[0])
    return GrammarSpec(given[0], source)


class GrammarCompiler:
    """Compiles and caches grammars for one tokenizer (compilation costs milliseconds)."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_ids: list[int]):
        import xgrammar as xgr

        self._xgr = xgr
        info = grammar_tokenizer_info(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_ids)
        self._compiler = xgr.GrammarCompiler(info, max_threads=1)
        self._cache: dict[GrammarSpec, Any] = {}
        self._lock = threading.Lock()
        self.vocab_size = vocab_size

    def compile(self, spec: GrammarSpec) -> Any:
        with self._lock:
            if spec in self._cache:
                return self._cache[spec]
        try:
            if spec.kind == "json_schema":
                # A clear error for bad JSON before xgrammar's, and SGLang's own check.
                check_json_schema_as_sglang(json.loads(spec.source))
                # Compact JSON: with free whitespace a weak model can spend max_tokens on it.
                compiled = self._compiler.compile_json_schema(spec.source, any_whitespace=False)
            elif spec.kind == "regex":
                compiled = self._compiler.compile_regex(spec.source)
            elif spec.kind == "structural_tag":
                compiled = self._compiler.compile_structural_tag(spec.source)
            else:
                compiled = self._compiler.compile_grammar(spec.source)
        except Exception as exc:  # xgrammar raises RuntimeError/ValueError with its reason
            raise InvalidRequestError(f"invalid {spec.kind}: {exc}", spec.kind) from exc
        with self._lock:
            self._cache[spec] = compiled
        return compiled

    def matcher(self, compiled: Any, gate: list[int] | None) -> SequenceGrammar:
        return SequenceGrammar(self._xgr, compiled, self.vocab_size, gate)


class SequenceGrammar:
    """One sequence's matcher: masks logits while active, follows accepted tokens."""

    def __init__(self, xgr: Any, compiled: Any, vocab_size: int, gate: list[int] | None):
        self._xgr = xgr
        self._matcher = xgr.GrammarMatcher(compiled)
        self._bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        self._gate = list(gate) if gate else None
        self._recent: list[int] = []

    @property
    def active(self) -> bool:
        return self._gate is None

    def mask(self, logits: torch.Tensor) -> None:
        if not self.active:
            return
        self._matcher.fill_next_token_bitmask(self._bitmask)
        self._xgr.apply_token_bitmask_inplace(logits.unsqueeze(0), self._bitmask)

    def accept(self, token: int) -> None:
        if self._gate is not None:
            self._recent = [*self._recent, token][-len(self._gate) :]
            if self._recent == self._gate:
                self._gate = None  # reasoning closed: the grammar starts with the next token
            return
        if not self._matcher.accept_token(token):
            raise RuntimeError(f"token {token} rejected by the grammar it was masked with")

    @property
    def terminated(self) -> bool:
        return self.active and bool(self._matcher.is_terminated())
