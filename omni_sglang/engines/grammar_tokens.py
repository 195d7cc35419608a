"""The tokenizer as a grammar should see it: the text each token adds to the answer.

xgrammar's ``TokenizerInfo.from_huggingface`` (SGLang's grammar backend builds it the
same way) marks no special token as special: ``<image>``, ``<so_start>``, ``<pad>``, ...
count as their literal text, so a grammar admits them inside a JSON string, and the
answer, detokenized with ``skip_special_tokens``, then lacks them (measured on the tiny
model: a ``name`` with ``minLength: 1`` held exactly ``<so_start>``, which the text
shows as ""). Here every special token of the tokenizer but the stop tokens has an empty
text, which is what xgrammar treats as special: no grammar admits it.
"""

from __future__ import annotations

from typing import Any


def grammar_tokenizer_info(
    tokenizer: Any, vocab_size: int | None = None, stop_token_ids: list[int] | None = None
) -> Any:
    """xgrammar's ``TokenizerInfo`` for a Hugging Face tokenizer, special tokens hidden."""
    import xgrammar as xgr

    base = xgr.TokenizerInfo.from_huggingface(
        tokenizer, vocab_size=vocab_size, stop_token_ids=stop_token_ids
    )
    hidden = set(getattr(tokenizer, "all_special_ids", ())) - set(base.stop_token_ids)
    if not hidden:
        return base
    size = len(tokenizer)
    encoded = tokenizer.convert_ids_to_tokens(list(range(size)))
    encoded = ["" if i in hidden else (token or "") for i, token in enumerate(encoded)]
    return xgr.TokenizerInfo(
        encoded,
        base.vocab_type,
        vocab_size=base.vocab_size,
        stop_token_ids=base.stop_token_ids,
        add_prefix_space=base.add_prefix_space,
    )
