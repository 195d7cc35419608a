"""The sglang backend: what it sends is validated by SGLang's own request and sampling
types, and its stream / abort / refusal logic runs against SGLang's real runtime (an
in-process ``sglang.Engine`` on this CPU through the omni-sglang-cpu platform plugin).
Its shutdown is what ends the module's engine fixture."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from omni_sglang.adapter.chat import prepare_chat
from omni_sglang.config import load_config
from omni_sglang.engines.base import EngineRequest
from omni_sglang.engines.sglang_backend import (
    NOT_SENT_TO_SGLANG,
    SGLangEngine,
    to_generate_req_input,
)
from omni_sglang.errors import ConfigError, ContextLengthExceededError, InvalidRequestError
from omni_sglang.protocol.openai import ChatCompletionRequest
from omni_sglang.state import ServerState
from omni_sglang_nemotron.plugin import BUDGET_KEY
from tests.conftest import adapter_state, chat_request, new_children, sglang_kills_only

pytestmark = pytest.mark.sglang


@pytest.fixture(scope="module")
async def state(tiny_model_path: Path) -> AsyncIterator[ServerState]:
    """The real adapter with the tiny model's tokenizer (the CPU engine only lends it)."""
    async with adapter_state(tiny_model_path, thinking_grace_tokens=0) as st:
        yield st


def chat(**fields: Any) -> ChatCompletionRequest:
    return chat_request(**fields)  # type: ignore[no-any-return]


def sglang_sampling_params(params: dict[str, Any], tokenizer: Any) -> Any:
    """As SGLang's tokenizer manager builds them, then across its msgpack IPC."""
    import msgspec
    from sglang.srt.sampling.sampling_params import SamplingParams

    built = SamplingParams(**params)  # an unknown key is a TypeError here
    built.normalize(tokenizer)
    built.verify(len(tokenizer))
    return msgspec.msgpack.decode(msgspec.msgpack.encode(built), type=SamplingParams)


# -- requests, validated by SGLang's GenerateReqInput ----------------------------------------


async def test_chat_request_is_a_valid_generate_req_input(state: ServerState) -> None:
    prepared = await prepare_chat(chat(thinking_token_budget=7, max_tokens=50, stop=["END"]), state)
    engine_request = prepared.request
    obj = to_generate_req_input(engine_request)
    obj.normalize_batch_and_arguments()
    assert obj.is_single and obj.rid == engine_request.rid and obj.stream
    assert obj.input_ids == engine_request.input_ids and obj.text is None
    assert obj.custom_logit_processor == state.budget_processor
    sampling = sglang_sampling_params(obj.sampling_params, state.tokenizer)
    assert sampling.max_new_tokens == 50 and sampling.stop_strs == ["END"]
    assert (sampling.temperature, sampling.top_p) == (0.6, 0.95)  # the model card's
    # The budget's per-request state survives SGLang's IPC types (JSON-safe values only).
    assert sampling.custom_params[BUDGET_KEY] == 7
    assert sampling.custom_params == engine_request.sampling_params["custom_params"]


def test_every_contract_field_reaches_sglang_or_is_declared_not_to() -> None:
    import dataclasses

    renamed = {"prompt": "text"}
    request = EngineRequest(rid="r")
    for f in dataclasses.fields(EngineRequest):
        if f.name not in NOT_SENT_TO_SGLANG and f.name != "rid":
            sampling = {"n": 1, "custom_params": {"k": 1}}
            given = {"sampling_params": sampling, "input_ids": [5]}
            given["sglang_fields"] = {"priority": 3, "extra_key": "tenant-a"}
            setattr(request, f.name, given.get(f.name, f"<{f.name}>"))
    obj = to_generate_req_input(request)
    for f in dataclasses.fields(EngineRequest):
        if f.name == "sglang_fields":  # GenerateReqInput's own fields, as they are
            assert (obj.priority, obj.extra_key) == (3, "tenant-a")
        elif f.name not in NOT_SENT_TO_SGLANG:
            assert getattr(obj, renamed.get(f.name, f.name)) == getattr(request, f.name), f.name
    # A processor always gets a custom_params dict: SGLang passes its request in it.
    request.sampling_params = {"n": 1}
    assert to_generate_req_input(request).sampling_params == {"n": 1, "custom_params": {}}


async def test_parallel_samples_become_an_sglang_batch(state: ServerState) -> None:
    engine_request = (await prepare_chat(chat(n=3), state)).request
    obj = to_generate_req_input(engine_request)
    obj.normalize_batch_and_arguments()
    assert obj.parallel_sample_num == 3 and not obj.is_single
    assert obj.batch_size == 1 and obj.rid == [f"{engine_request.rid}_{i}" for i in range(3)]


async def test_requests_stack_into_one_sglang_batch(state: ServerState) -> None:
    """Our per-request values are batch-compatible: a processor on one row and none on
    the other, different sampling params, as SGLang's batch normalisation expects."""
    from sglang.srt.managers.io_struct import GenerateReqInput

    budgeted = to_generate_req_input(
        (await prepare_chat(chat(thinking_token_budget=3), state)).request
    )
    plain = to_generate_req_input(
        (await prepare_chat(chat(chat_template_kwargs={"enable_thinking": False}), state)).request
    )
    rows = [budgeted, plain]
    batch = GenerateReqInput(
        input_ids=[r.input_ids for r in rows],
        sampling_params=[r.sampling_params for r in rows],
        custom_logit_processor=[r.custom_logit_processor for r in rows],
        rid=[r.rid for r in rows],
        stream=True,
    )
    batch.normalize_batch_and_arguments()
    assert batch.batch_size == 2 and not batch.is_single
    first, second = batch[0], batch[1]
    assert first.custom_logit_processor == state.budget_processor
    assert second.custom_logit_processor is None
    assert first.sampling_params["custom_params"][BUDGET_KEY] == 3
    assert second.sampling_params["temperature"] == 0.2  # thinking off: the card's values
    for row in (first, second):
        sglang_sampling_params(row.sampling_params, state.tokenizer)


# -- the backend against SGLang's real runtime (in this process, on the CPU platform) ---------


@pytest.fixture(scope="module")
async def engine(tiny_model_path: Path) -> AsyncIterator[SGLangEngine]:
    config = load_config(
        {"engine": "sglang", "sglang_args": ["--max-total-tokens", "65536"]},
        environ={"OMNI_SGLANG_TINY_MODEL_DIR": str(tiny_model_path.parent)},
    )
    previous = signal.getsignal(signal.SIGTERM)
    before = {p.pid for p in psutil.Process().children()}
    backend = SGLangEngine(config, "cpu")
    await backend.start()
    # SGLang installs its own SIGTERM handler from the main thread; ours (uvicorn's
    # drain) must stay in charge of SIGTERM.
    assert signal.getsignal(signal.SIGTERM) is previous
    sglang_children = new_children(before)
    assert sglang_children  # its scheduler and detokenizer
    yield backend
    with sglang_kills_only(backend, sglang_children):
        await backend.shutdown()
        await backend.shutdown()  # idempotent
        assert not await backend.health()


async def _until_idle(engine: SGLangEngine, timeout: float = 10) -> int:
    """SGLang drops an aborted request's state once its scheduler confirms the abort."""
    deadline = time.monotonic() + timeout
    while engine.num_running_requests and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return engine.num_running_requests


async def _collect(engine: SGLangEngine, request: EngineRequest) -> list[Any]:
    return [out async for out in engine.generate(request)]


async def test_streams_deltas_for_each_sample(engine: SGLangEngine) -> None:
    greedy = {"max_new_tokens": 6, "temperature": 0, "ignore_eos": True}
    request = EngineRequest(rid="deltas", input_ids=[5, 6, 7], sampling_params={**greedy, "n": 2})
    outs = await _collect(engine, request)
    assert sorted(o.index for o in outs if o.finished) == [0, 1]
    single = await _collect(
        engine, EngineRequest(rid="one", input_ids=[5, 6, 7], sampling_params=greedy)
    )
    ids = [t for o in single for t in o.token_ids]
    assert len(ids) == 6 and all(len(o.token_ids) <= 1 for o in single)  # one step a delta
    for index in (0, 1):  # greedy: each sample is the single request's output
        assert [t for o in outs if o.index == index for t in o.token_ids] == ids
        assert "".join(o.text for o in outs if o.index == index) == "".join(o.text for o in single)
    assert engine.num_running_requests == 0


async def test_abort_ends_every_sample_and_frees_sglang(engine: SGLangEngine) -> None:
    request = EngineRequest(
        rid="aborted",
        input_ids=[5],
        sampling_params={"n": 2, "max_new_tokens": 5000, "ignore_eos": True},
    )
    stream = engine.generate(request)
    first = await anext(stream)
    assert not first.finished and engine.num_running_requests == 2
    await engine.abort("aborted")
    rest = [o async for o in stream]
    ended = [(o.index, o.finish_reason.type) for o in rest if o.finish_reason is not None]
    assert sorted(ended) == [(0, "abort"), (1, "abort")]
    assert await _until_idle(engine) == 0


async def test_closing_the_stream_aborts_in_sglang(engine: SGLangEngine) -> None:
    request = EngineRequest(
        rid="closed", input_ids=[5], sampling_params={"max_new_tokens": 5000, "ignore_eos": True}
    )
    stream = engine.generate(request)
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    assert await _until_idle(engine) == 0
    # SGLang still serves afterwards.
    after = await _collect(
        engine, EngineRequest(rid="after", input_ids=[5], sampling_params={"max_new_tokens": 2})
    )
    assert after[-1].finished


async def test_sglang_refusals_are_client_errors(engine: SGLangEngine) -> None:
    too_long = EngineRequest(rid="long", input_ids=[5] * (engine.model_info().max_model_len + 1))
    with pytest.raises(ContextLengthExceededError, match="context length"):
        await _collect(engine, too_long)
    with pytest.raises(InvalidRequestError, match="input_ids"):
        await _collect(engine, EngineRequest(rid="empty"))  # neither prompt nor input_ids
    bad_grammar = EngineRequest(
        rid="grammar", input_ids=[5], sampling_params={"json_schema": '{"type": "bogus"}'}
    )
    with pytest.raises(InvalidRequestError, match="grammar"):  # SGLang's 400 abort
        await _collect(engine, bad_grammar)
    with pytest.raises(InvalidRequestError, match="unknown sampling_params key"):
        await _collect(
            engine, EngineRequest(rid="key", input_ids=[5], sampling_params={"bogus": 1})
        )
    outside = EngineRequest(rid="vocab", input_ids=[10**6])  # would kill SGLang's scheduler
    with pytest.raises(InvalidRequestError, match="outside this vocabulary"):
        await _collect(engine, outside)
    assert await engine.health()


def test_worker_nodes_are_refused_with_the_way_to_start_them() -> None:
    config = load_config(
        {"model_path": "/m", "sglang_args": ["--nnodes", "2", "--node-rank", "1"]}, environ={}
    )
    with pytest.raises(ConfigError, match="sglang serve"):
        SGLangEngine(config)
