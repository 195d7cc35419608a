"""What omni-sglang changes inside SGLang's own processes, through SGLang's general-plugin
seam (entry point group ``sglang.srt.plugins``: SGLang calls ``register`` early in its
main, scheduler and detokenizer processes, then applies the hooks registered).

A scheduler that fails to start reports its cause to the server (``sglang_startup``).

A custom logits processor that raises fails only the requests it raised for.
SGLang calls processors inside its scheduler's forward step, where an exception kills the
scheduler and with it every request in flight. Here a raising processor is retried row
by row; a row that raises again has its request aborted with a 500 that names the
processor and the exception, and keeps the logits the processor was given, so the batch
goes on.

The hooks apply only where omni-sglang's sglang engine started SGLang (it sets ``ENABLE``
in the environment its children inherit): a plain ``sglang serve`` in the same Python
environment keeps SGLang's own behaviour.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from omni_sglang.engines.base import processor_failed
from omni_sglang.engines.sglang_startup import record_scheduler_failure

logger = logging.getLogger(__name__)

#: Set to "1" by the sglang engine before it starts SGLang.
ENABLE = "OMNI_SGLANG_HOOKS"
#: SGLang's function that runs every custom logits processor of a batch.
TARGET = "sglang.srt.layers.sampler.apply_custom_logit_processor"
SCHEDULER_INIT = "sglang.srt.managers.scheduler.Scheduler.__init__"
GRAMMAR_BACKEND_INIT = "sglang.srt.constrained.xgrammar_backend.XGrammarGrammarBackend.__init__"


def register() -> None:
    """SGLang's general-plugin entry point."""
    if os.environ.get(ENABLE) != "1":
        return
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(TARGET, isolate_processor_faults, HookType.AROUND)
    HookRegistry.register(SCHEDULER_INIT, record_scheduler_failure, HookType.AROUND)
    HookRegistry.register(GRAMMAR_BACKEND_INIT, hide_special_tokens, HookType.AROUND)


def hide_special_tokens(
    original: Callable[..., Any], backend: Any, *args: Any, **kwargs: Any
) -> Any:
    """SGLang's xgrammar backend with the tokenizer info the cpu engine uses
    (``grammar_tokens``): no grammar admits a special token the answer would not show."""
    original(backend, *args, **kwargs)
    tokenizer = kwargs.get("tokenizer", args[0] if args else None)
    if tokenizer is None or hasattr(tokenizer, "init_xgrammar"):
        return  # a tokenizer with its own xgrammar info: SGLang's choice stands
    from xgrammar import GrammarCompiler

    from omni_sglang.engines.grammar_tokens import grammar_tokenizer_info

    before = backend._tokenizer_info
    info = grammar_tokenizer_info(
        tokenizer, vocab_size=before.vocab_size, stop_token_ids=list(before.stop_token_ids)
    )
    backend._tokenizer_info = info
    backend.grammar_compiler = GrammarCompiler(tokenizer_info=info)
    backend._framing_compiler = backend._new_framing_compiler(info)


def isolate_processor_faults(
    original: Callable[..., Any], logits: Any, info: Any, *args: Any, **kwargs: Any
) -> Any:
    for entry in (info.custom_logit_processor or {}).values():
        if not isinstance(entry.processor, RowIsolated):
            entry.processor = RowIsolated(entry.processor)
    return original(logits, info, *args, **kwargs)


class RowIsolated:
    """A processor whose failure is confined to the rows (requests) it fails for."""

    def __init__(self, processor: Any):
        self.processor = processor

    def __call__(self, logits: Any, params: list[Any]) -> Any:
        import torch

        given = logits.clone()  # processors write in place: keep what a retry needs
        try:
            return self.processor(logits, params)
        except Exception:
            logger.warning(
                "logits processor %s raised; retrying row by row", type(self.processor).__name__
            )
        rows = []
        for row, row_params in enumerate(params):
            original = given[row : row + 1]
            try:
                rows.append(self.processor(original.clone(), [row_params]))
            except Exception as exc:
                _abort(row_params, processor_failed(self.processor, exc), exc)
                rows.append(original)
        return torch.cat(rows)


def _abort(params: Any, message: str, exc: Exception) -> None:
    """End the row's request with a 500 at this step. Its ``Req`` is in ``custom_params``
    (SGLang passes it to processors as ``__req__``; the sglang engine always sends a
    ``custom_params`` dict with a processor, so it is there)."""
    from http import HTTPStatus

    from sglang.srt.managers.schedule_batch import FINISH_ABORT

    req = params.get("__req__") if isinstance(params, dict) else None
    if req is None:
        raise exc  # no way to end only this request: SGLang's own behaviour
    logger.error("request %s: %s", req.rid, message)
    req.to_finish = FINISH_ABORT(message, HTTPStatus.INTERNAL_SERVER_ERROR, "InternalServerError")
