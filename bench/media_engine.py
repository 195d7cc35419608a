"""The media path through each engine, stage by stage, in one run (``bench.media``).

The same chat request (one media part by ``file://`` URL, a cold media cache) through
our adapter over each engine, in-process, as the server runs it:

- ``prepare``: what we do before the engine: fetch, sniff, limits, then on the CPU
  engine decoding and our modality processor (expansion and features), on the sglang
  engine the decoded image / the frame plan only / the bytes, and the unexpanded ids;
- ``sglang_processor`` (sglang only): SGLang's Nemotron Omni processor (our subclass)
  on that request, as its tokenizer manager runs it: video decode at our frame plan,
  tiling, Parakeet's mel features, the expansion;
- ``first_token``: the engine's time to one token for the prepared request: on the CPU
  engine the tiny linear encoders and the prefill, on SGLang its processor again, the
  model's RADIO / Parakeet towers on ``tiny-omni`` and the prefill; ``text_first_token``
  is the same without the media part, so the difference is the media's cost there.

Tiny checkpoints: the towers are toy-sized (RADIO ViT-S at 32 px tiles), so the encoder
figures are not the real model's; decode, frame plans and SGLang's processor are real work.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from omni_sglang.adapter.chat import prepare_chat
from omni_sglang.config import load_config
from omni_sglang.engines.base import Engine
from omni_sglang.media import MediaCache
from omni_sglang.plugins import registry
from omni_sglang.protocol.openai import ChatCompletionRequest
from omni_sglang.state import ServerPlugins, ServerState

MEDIA_PART = {"video": "video_url", "audio": "audio_url", "image": "image_url"}
SGLANG_ARGS = ["--max-total-tokens", "131072"]


def _body(kind: str | None, url: str | None) -> ChatCompletionRequest:
    content: list[dict[str, Any]] = [{"type": "text", "text": "Describe it."}]
    if kind and url:
        part = MEDIA_PART[kind]
        content.append({"type": part, part: {"url": url}})
    return ChatCompletionRequest.model_validate(
        {
            "model": "tiny-nemotron-h",
            "max_tokens": 1,
            "chat_template_kwargs": {"enable_thinking": False},
            "messages": [{"role": "user", "content": content}],
        }
    )


async def _build(name: str, media_dir: Path) -> ServerState:
    fields: dict[str, Any] = {
        "engine": name,
        "model": "tiny-omni" if name == "sglang" else "tiny",
        "served_model_name": ["tiny-nemotron-h"],
        "allowed_local_media_path": str(media_dir),
        "log_level": "warning",
    }
    if name == "sglang":
        fields["sglang_args"] = SGLANG_ARGS
    config = load_config(fields, environ={})
    engine: Engine
    if name == "sglang":
        from omni_sglang.engines.sglang_backend import SGLangEngine

        engine = SGLangEngine(config, "cpu")
    else:
        from omni_sglang.engines.cpu.engine import CpuEngine

        engine = CpuEngine(config.resolved_model_path())
    await engine.start()
    state = ServerState(config, engine, ServerPlugins.from_config(config, registry))
    state.prepare_plugins()
    return state


async def _first_token(state: ServerState, request: Any) -> float:
    request.rid = f"bench-{uuid.uuid4().hex}"
    started = time.perf_counter()
    async for out in state.engine.generate(request):
        if out.token_ids or out.finished:
            break
    return time.perf_counter() - started


async def _sglang_processor(state: ServerState, request: Any) -> float:
    from omni_sglang.engines.sglang_backend import to_generate_req_input

    manager = state.engine._engine.tokenizer_manager  # type: ignore[attr-defined]
    obj = to_generate_req_input(request)
    for key in ("image_data", "video_data", "audio_data"):  # as the manager lists them
        value = getattr(obj, key)
        if value is not None and not isinstance(value, list):
            setattr(obj, key, [value])
    started = time.perf_counter()
    await manager.mm_processor.process_mm_data_async(
        image_data=obj.image_data,
        audio_data=obj.audio_data,
        input_text=obj.input_ids,
        request_obj=obj,
        max_req_input_len=manager.max_req_input_len,
    )
    return time.perf_counter() - started


def _median(times: list[float]) -> float:
    return round(statistics.median(times), 4)


async def _stages(state: ServerState, kind: str, url: str, repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"prepare": [], "first_token": [], "text_first_token": []}
    if state.engine.expands_media:
        times["sglang_processor"] = []
    for attempt in range(repeats + 1):  # the first is a warm-up
        state.media_loader.cache = MediaCache()  # cold: fetch and decode every time
        started = time.perf_counter()
        prepared = await prepare_chat(_body(kind, url), state)
        prepare = time.perf_counter() - started
        processor = (
            await _sglang_processor(state, prepared.request) if state.engine.expands_media else 0.0
        )
        first = await _first_token(state, prepared.request)
        text = await _first_token(state, (await prepare_chat(_body(None, None), state)).request)
        if attempt:
            times["prepare"].append(prepare)
            times["first_token"].append(first)
            times["text_first_token"].append(text)
            if "sglang_processor" in times:
                times["sglang_processor"].append(processor)
    return {stage: _median(values) for stage, values in times.items()}


async def engine_path(
    paths: dict[str, Path], labels: dict[str, str], repeats: int
) -> list[dict[str, Any]]:
    """One row per medium: each engine's stages, and sglang over cpu ratios."""
    figures: dict[str, dict[str, dict[str, float]]] = {}
    for name in ("cpu", "sglang"):
        state = await _build(name, paths["video"].parent)
        try:
            figures[name] = {
                kind: await _stages(state, kind, f"file://{path}", repeats)
                for kind, path in paths.items()
            }
        finally:
            await state.engine.shutdown()
    rows = []
    for kind in paths:
        cpu, sglang = figures["cpu"][kind], figures["sglang"][kind]
        rows.append(
            {
                "media": labels[kind],
                "path": "engine (chat request, cold media cache, 1 token)",
                "cpu_engine_s": cpu,
                "sglang_engine_s": sglang,
                "ratio_sglang_over_cpu": {
                    stage: round(sglang[stage] / cpu[stage], 3) for stage in cpu if cpu[stage]
                },
            }
        )
    return rows


def run(paths: dict[str, Path], labels: dict[str, str], repeats: int) -> list[dict[str, Any]]:
    return asyncio.run(engine_path(paths, labels, repeats))
