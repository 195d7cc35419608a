"""The CPU engine honours SGLang's sampling parameters and request lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from omni_sglang.engines.base import EngineOutput, EngineRequest
from omni_sglang.engines.cpu.engine import CpuEngine
from omni_sglang.errors import ContextLengthExceededError, InvalidRequestError, OmniError

PROMPT = "<|im_start|>user\nTell me about Paris<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
async def engine(tiny_model_path: Path) -> AsyncIterator[CpuEngine]:
    eng = CpuEngine(tiny_model_path, max_model_len=256)
    await eng.start()
    yield eng
    await eng.shutdown()


_counter = 0


async def run(engine: CpuEngine, **params: Any) -> dict[int, tuple[str, list[int], Any]]:
    """Generate; returns per sample index: (text, token ids, finish reason)."""
    global _counter
    _counter += 1
    prompt = params.pop("prompt", PROMPT)
    processor = params.pop("custom_logit_processor", None)
    request = EngineRequest(
        rid=f"t{_counter}",
        prompt=prompt,
        sampling_params=params,
        custom_logit_processor=processor,
    )
    results: dict[int, tuple[str, list[int], Any]] = {}
    async for out in engine.generate(request):
        text, ids, _ = results.get(out.index, ("", [], None))
        results[out.index] = (text + out.text, ids + out.token_ids, out.finish_reason)
    return results


async def test_greedy_is_deterministic(engine: CpuEngine) -> None:
    a = await run(engine, temperature=0, max_new_tokens=24, ignore_eos=True)
    b = await run(engine, temperature=0, max_new_tokens=24, ignore_eos=True)
    assert a[0][1] == b[0][1] and len(a[0][1]) == 24


async def test_seed_reproducible_and_seeds_differ(engine: CpuEngine) -> None:
    a = await run(engine, temperature=1.0, sampling_seed=7, max_new_tokens=24, ignore_eos=True)
    b = await run(engine, temperature=1.0, sampling_seed=7, max_new_tokens=24, ignore_eos=True)
    c = await run(engine, temperature=1.0, sampling_seed=8, max_new_tokens=24, ignore_eos=True)
    assert a[0][1] == b[0][1]
    assert a[0][1] != c[0][1]


async def test_max_new_tokens_and_length_finish(engine: CpuEngine) -> None:
    out = await run(engine, temperature=0, max_new_tokens=5, ignore_eos=True)
    _, ids, finish = out[0]
    assert len(ids) == 5 and finish.type == "length"


async def test_max_new_tokens_zero_returns_nothing(engine: CpuEngine) -> None:
    out = await run(engine, max_new_tokens=0)
    assert out[0][1] == [] and out[0][2].type == "length"


async def test_stop_string_trims_and_reports(engine: CpuEngine) -> None:
    full = await run(engine, temperature=0, max_new_tokens=40, ignore_eos=True)
    text = full[0][0]
    stop = text[10:13]
    assert len(stop) == 3
    cut = await run(engine, temperature=0, max_new_tokens=40, ignore_eos=True, stop=[stop])
    assert cut[0][0] == text[: text.find(stop)]
    assert cut[0][2].type == "stop" and cut[0][2].matched == stop
    kept = await run(
        engine, temperature=0, max_new_tokens=40, ignore_eos=True, stop=[stop], no_stop_trim=True
    )
    assert kept[0][0] == text[: text.find(stop) + 3]


async def test_stop_token_ids(engine: CpuEngine) -> None:
    full = await run(engine, temperature=0, max_new_tokens=30, ignore_eos=True)
    ids = full[0][1]
    target = ids[6]
    cut = await run(
        engine, temperature=0, max_new_tokens=30, ignore_eos=True, stop_token_ids=[target]
    )
    assert cut[0][1] == ids[: ids.index(target) + 1]
    assert cut[0][2].matched == target


async def test_n_samples_are_independent(engine: CpuEngine) -> None:
    out = await run(
        engine, n=3, temperature=1.0, sampling_seed=1, max_new_tokens=12, ignore_eos=True
    )
    assert sorted(out) == [0, 1, 2]
    assert len({tuple(v[1]) for v in out.values()}) == 3
    assert all(len(v[1]) == 12 for v in out.values())


async def test_min_new_tokens_blocks_eos(engine: CpuEngine) -> None:
    eos = engine.tokenizer.convert_tokens_to_ids("<|im_end|>")
    bias = {str(eos): 100.0}  # EOS would win every step without min_new_tokens
    early = await run(engine, temperature=0, max_new_tokens=20, logit_bias=bias)
    assert early[0][1] == [eos] and early[0][2].matched == eos
    held = await run(engine, temperature=0, max_new_tokens=20, logit_bias=bias, min_new_tokens=4)
    assert len(held[0][1]) == 5 and eos not in held[0][1][:4]
    ignored = await run(engine, temperature=0, max_new_tokens=6, logit_bias=bias, ignore_eos=True)
    assert ignored[0][1] == [eos] * 6


async def test_penalties_change_greedy_output(engine: CpuEngine) -> None:
    base = await run(engine, temperature=0, max_new_tokens=40, ignore_eos=True)
    ids = base[0][1]
    assert len(set(ids)) < len(ids), "greedy tiny model should repeat itself"
    for key in ("frequency_penalty", "presence_penalty"):
        pen = await run(engine, temperature=0, max_new_tokens=40, ignore_eos=True, **{key: 2.0})
        assert pen[0][1] != ids, key
    rep = await run(
        engine, temperature=0, max_new_tokens=40, ignore_eos=True, repetition_penalty=2.0
    )
    assert len(set(rep[0][1])) > len(set(ids))


async def test_top_k_one_equals_greedy(engine: CpuEngine) -> None:
    greedy = await run(engine, temperature=0, max_new_tokens=16, ignore_eos=True)
    top1 = await run(engine, temperature=1.5, top_k=1, max_new_tokens=16, ignore_eos=True)
    tiny_p = await run(
        engine, temperature=1.5, top_p=1e-6, max_new_tokens=16, ignore_eos=True, sampling_seed=3
    )
    min_p = await run(
        engine, temperature=1.5, min_p=1.0, max_new_tokens=16, ignore_eos=True, sampling_seed=3
    )
    assert greedy[0][1] == top1[0][1] == tiny_p[0][1] == min_p[0][1]


async def test_custom_logit_processor_gets_sglang_shape(
    engine: CpuEngine, force_tokens_processor: str
) -> None:
    wanted = engine.tokenizer("Hello world", add_special_tokens=False).input_ids
    eos = engine.tokenizer.convert_tokens_to_ids("<|im_end|>")
    out = await run(
        engine,
        max_new_tokens=50,
        custom_logit_processor=force_tokens_processor,
        custom_params={"force": wanted, "eos": eos},
    )
    assert out[0][0] == "Hello world"
    assert out[0][1] == [*wanted, eos]
    assert out[0][2].type == "stop"


async def test_concurrent_streams_interleave(engine: CpuEngine) -> None:
    order: list[str] = []

    async def one(i: int) -> int:
        request = EngineRequest(
            rid=f"c{i}",
            prompt=PROMPT,
            sampling_params={"max_new_tokens": 10, "ignore_eos": True, "temperature": 0},
        )
        count = 0
        async for out in engine.generate(request):
            order.append(request.rid)
            count += len(out.token_ids)
        return count

    counts = await asyncio.gather(*(one(i) for i in range(8)))
    assert counts == [10] * 8
    # Interleaved: the first request has not finished before the last one started.
    assert order.index("c7") < len(order) - 1 - order[::-1].index("c0")
    assert engine.num_running_requests == 0


async def test_closing_the_stream_aborts_and_frees(engine: CpuEngine) -> None:
    request = EngineRequest(
        rid="gone", prompt=PROMPT, sampling_params={"max_new_tokens": 200, "ignore_eos": True}
    )
    stream = engine.generate(request)
    got: list[EngineOutput] = []
    async for out in stream:
        got.append(out)
        if len(got) == 3:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    for _ in range(100):
        if engine.num_running_requests == 0:
            break
        await asyncio.sleep(0.02)
    assert engine.num_running_requests == 0


async def test_abort_by_id_finishes_with_abort(engine: CpuEngine) -> None:
    request = EngineRequest(
        rid="abortme", prompt=PROMPT, sampling_params={"max_new_tokens": 200, "ignore_eos": True}
    )
    finish = None
    async for out in engine.generate(request):
        if out.completion_tokens == 2:
            await engine.abort("abortme")
        finish = out.finish_reason
    assert finish is not None and finish.type == "abort"
    assert engine.num_running_requests == 0


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"temperature": -1}, InvalidRequestError, "temperature"),
        ({"top_p": 0}, InvalidRequestError, "top_p"),
        ({"top_k": 0}, InvalidRequestError, "top_k"),
        ({"max_new_tokens": -3}, InvalidRequestError, "max_new_tokens"),
        ({"bogus": 1}, InvalidRequestError, "unknown sampling_params"),
        ({"stop_regex": "a+"}, OmniError, "does not implement stop_regex"),
        ({"structural_tag": "{}"}, InvalidRequestError, "invalid structural_tag"),
        ({"regex": "a++("}, InvalidRequestError, "invalid regex"),
        ({"json_schema": "{not json"}, InvalidRequestError, "invalid json_schema"),
        ({"regex": "a", "ebnf": 'root ::= "a"'}, InvalidRequestError, "only one of"),
        ({"stop": [""]}, InvalidRequestError, "stop"),
    ],
)
async def test_bad_sampling_params_are_client_errors(
    engine: CpuEngine, params: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match) as info:
        await run(engine, **params)
    assert info.value.status_code == 400


async def test_prompt_longer_than_context(engine: CpuEngine) -> None:
    with pytest.raises(ContextLengthExceededError):
        await run(engine, prompt="Paris " * 400)
