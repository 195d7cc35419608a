"""SGLang's logprob entries ``[logprob, token_id, text]`` -> OpenAI's logprobs objects:
chat's ``{"content": [...]}`` and legacy completions' ``tokens`` / ``token_logprobs`` /
``top_logprobs`` / ``text_offset``.

SGLang's OpenAI server has this conversion (``entrypoints/openai/utils.py``), but
importing it costs about 13 s here, and the cpu engine never imports SGLang; so it is
restated, with SGLang's rules: a token is named by decoding its id, and its ``bytes`` are
its true bytes for a byte-level BPE tokenizer (decoding a lone byte of a multi-byte
character gives U+FFFD). A token that is not whole UTF-8 is named as OpenAI names it,
``bytes:\\xe2\\x9c``, so two such tokens never share a ``top_logprobs`` key.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import Any

from transformers.convert_slow_tokenizer import bytes_to_unicode

#: GPT-2's byte-level alphabet, read back: its printable stand-in -> the byte.
_BYTE_OF = {char: byte for byte, char in bytes_to_unicode().items()}

Entry = list[Any]  # SGLang's [logprob, token_id, text_or_None]

#: What a token the sampler could not pick (masked by a grammar or a processor: -inf)
#: is reported as; JSON has no infinity and OpenAI's clients want a number (vLLM's value).
IMPOSSIBLE = -9999.0


def _finite(logprob: float) -> float:
    return max(logprob, IMPOSSIBLE)


def _is_byte_level(tokenizer: Any) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = getattr(backend, "decoder", None)
    return type(decoder).__name__ == "ByteLevel" or "ByteLevel" in repr(decoder)


def _continues(pending: bytes, raw: bytes) -> bool:
    """Whether ``raw`` goes on with the UTF-8 character ``pending`` began."""
    lead = pending[0]
    length = 2 if lead >= 0xC0 else 1
    length = 3 if lead >= 0xE0 else length
    length = 4 if lead >= 0xF0 else length
    head = pending + raw[: max(0, length - len(pending))]
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return len(head) > len(pending)


class TokenNames:
    """A token id -> (its name, its bytes), cached: one per tokenizer, built once."""

    def __init__(self, tokenizer: Any):
        self._tokenizer = tokenizer
        self._byte_level = _is_byte_level(tokenizer)
        self._names: dict[int, tuple[str, bytes]] = {}

    def _raw(self, token_id: int, text: str) -> bytes:
        if self._byte_level:
            piece = self._tokenizer.convert_ids_to_tokens(token_id) or ""
            if piece and all(char in _BYTE_OF for char in piece):
                return bytes(_BYTE_OF[char] for char in piece)
        return text.encode("utf-8")

    def __call__(self, token_id: int) -> tuple[str, bytes]:
        found = self._names.get(token_id)
        if found is None:
            text = str(self._tokenizer.decode([token_id]))
            raw = self._raw(token_id, text)
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                text = "bytes:" + "".join(f"\\x{b:02x}" for b in raw)
            found = self._names[token_id] = (text, raw)
        return found


def chat_content(
    names: TokenNames, entries: list[Entry], tops: list[list[Entry]] | None
) -> list[dict[str, Any]]:
    """OpenAI's ``choices[].logprobs.content`` items for these output tokens."""
    out = []
    for i, (logprob, token_id, _) in enumerate(entries):
        name, raw = names(token_id)
        row = tops[i] if tops and i < len(tops) and tops[i] else []
        top = []
        for top_logprob, top_id, _ in row:
            top_name, top_raw = names(top_id)
            top.append({"token": top_name, "logprob": _finite(top_logprob), "bytes": list(top_raw)})
        out.append(
            {"token": name, "logprob": _finite(logprob), "bytes": list(raw), "top_logprobs": top}
        )
    return out


@dataclass
class CompletionLogprobs:
    """One completion choice's legacy logprobs, built up as its tokens arrive; the text
    offsets count characters from the start of the choice's text (echo included)."""

    names: TokenNames
    tokens: list[str] = field(default_factory=list)
    token_logprobs: list[float | None] = field(default_factory=list)
    top_logprobs: list[dict[str, float] | None] = field(default_factory=list)
    text_offset: list[int] = field(default_factory=list)
    _chars: int = 0
    _utf8: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"))

    def add(self, entries: list[Entry], tops: list[list[Entry]] | None) -> dict[str, Any]:
        """Append these tokens; returns the logprobs object of just these (a chunk's)."""
        start = len(self.tokens)
        for i, (logprob, token_id, _) in enumerate(entries):
            name, raw = self.names(token_id)
            self.tokens.append(name)
            self.token_logprobs.append(None if logprob is None else _finite(logprob))
            self.text_offset.append(self._offset(raw))
            self._chars += len(self._utf8.decode(raw))
            if logprob is None:  # the prompt's first token: nothing to predict it from
                self.top_logprobs.append(None)
                continue
            row = tops[i] if tops and i < len(tops) and tops[i] else []
            # Ids can share a name (a padded vocabulary's ids past the tokenizer all decode
            # to ""): the likelier keeps the key. OpenAI's rule: the sampled token is always
            # among the top logprobs, under its own logprob.
            top: dict[str, float] = {}
            for top_lp, top_id, _ in row:
                top.setdefault(self.names(top_id)[0], _finite(top_lp))
            top[name] = _finite(logprob)
            self.top_logprobs.append(top)
        return self.since(start)

    def _offset(self, raw: bytes) -> int:
        """Where this token's text starts: at the character it completes when it goes on
        one an earlier token began, else after the earlier token's bytes (which, if they
        were the start of no character, the text shows as U+FFFD)."""
        pending, _ = self._utf8.getstate()
        if not pending or _continues(pending, raw):
            return self._chars
        return self._chars + len(pending.decode("utf-8", "replace"))

    def since(self, start: int) -> dict[str, Any]:
        return {
            "tokens": self.tokens[start:],
            "token_logprobs": self.token_logprobs[start:],
            "top_logprobs": self.top_logprobs[start:],
            "text_offset": self.text_offset[start:],
        }
