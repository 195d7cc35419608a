"""The sglang backend on CPU: what it sends is validated by SGLang's own request and
sampling types, the budget processor runs through SGLang's own sampler function, and
the stream / abort / shutdown logic runs against a tokenizer manager that behaves as
SGLang's does (the real one needs a GPU scheduler)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import torch

from omni_sglang.adapter.chat import prepare_chat
from omni_sglang.config import load_config
from omni_sglang.engines.base import EngineRequest
from omni_sglang.engines.sglang_backend import (
    NOT_SENT_TO_SGLANG,
    SGLangEngine,
    StreamDeltas,
    to_generate_req_input,
)
from omni_sglang.errors import ConfigError, ContextLengthExceededError, InvalidRequestError
from omni_sglang.protocol.openai import ChatCompletionRequest
from omni_sglang.state import ServerState
from tests.conftest import adapter_state, chat_request

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
    assert sampling.custom_params["thinking_budget"] == 7
    assert sampling.custom_params == engine_request.sampling_params["custom_params"]


def test_every_contract_field_reaches_sglang_or_is_declared_not_to() -> None:
    import dataclasses

    renamed = {"prompt": "text"}
    request = EngineRequest(rid="r")
    for f in dataclasses.fields(EngineRequest):
        if f.name not in NOT_SENT_TO_SGLANG and f.name != "rid":
            value = {"sampling_params": {"n": 1}, "input_ids": [5]}.get(f.name, f"<{f.name}>")
            setattr(request, f.name, value)
    obj = to_generate_req_input(request)
    for f in dataclasses.fields(EngineRequest):
        if f.name not in NOT_SENT_TO_SGLANG:
            assert getattr(obj, renamed.get(f.name, f.name)) == getattr(request, f.name), f.name


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
    assert first.sampling_params["custom_params"]["thinking_budget"] == 3
    assert second.sampling_params["temperature"] == 0.2  # thinking off: the card's values
    for row in (first, second):
        sglang_sampling_params(row.sampling_params, state.tokenizer)


# -- the thinking budget through SGLang's own sampler path -----------------------------------


class FakeReq:
    """What SGLang's ``"__req__"`` entry exposes to a processor."""

    def __init__(self, prompt_ids: list[int]):
        self.origin_input_ids = prompt_ids
        self.output_ids: list[int] = []


def batch_info(processor_str: str, rows: list[dict[str, Any] | None], vocab: int) -> Any:
    from sglang.srt.sampling.custom_logit_processor import CustomLogitProcessor
    from sglang.srt.sampling.sampling_batch_info import ProcessorEntry, SamplingBatchInfo

    size = len(rows)
    with_processor = [i for i, row in enumerate(rows) if row is not None]
    return SamplingBatchInfo(
        temperatures=torch.ones(size, 1),
        top_ps=torch.ones(size),
        top_ks=torch.full((size,), vocab, dtype=torch.int32),
        min_ps=torch.zeros(size),
        is_all_greedy=True,
        is_any_greedy=True,
        need_top_p_sampling=False,
        need_top_k_sampling=False,
        need_min_p_sampling=False,
        vocab_size=vocab,
        device="cpu",
        has_custom_logit_processor=True,
        custom_params=rows,
        custom_logit_processor={
            hash(processor_str): ProcessorEntry(
                processor=CustomLogitProcessor.from_str(processor_str),
                rows=with_processor,
                indices=torch.tensor(with_processor),
            )
        },
    )


async def run_budget(
    state: ServerState, budget: int, model_says: list[int], steps: int
) -> list[int]:
    """Decode ``steps`` tokens for a budgeted chat next to an unbudgeted request; the
    'model' prefers ``model_says`` (cycled). Returns the budgeted row's output."""
    from sglang.srt.layers.sampler import apply_custom_logit_processor

    request = (await prepare_chat(chat(thinking_token_budget=budget), state)).request
    obj = to_generate_req_input(request)
    obj.normalize_batch_and_arguments()
    params = dict(sglang_sampling_params(obj.sampling_params, state.tokenizer).custom_params)
    budgeted, other = FakeReq(list(request.input_ids or [])), FakeReq([1, 2])
    params["__req__"] = budgeted
    vocab = len(state.tokenizer)
    info = batch_info(obj.custom_logit_processor, [params, None], vocab)
    for step in range(steps):
        logits = torch.zeros(2, vocab)
        logits[:, model_says[step % len(model_says)]] = 10.0
        apply_custom_logit_processor(logits, info)
        picked = torch.argmax(logits, dim=-1).tolist()
        budgeted.output_ids.append(picked[0])
        other.output_ids.append(picked[1])
    assert other.output_ids == [model_says[i % len(model_says)] for i in range(steps)]
    return budgeted.output_ids


def ids(state: ServerState, text: str) -> list[int]:
    return list(state.tokenizer(text, add_special_tokens=False).input_ids)


@pytest.mark.parametrize("budget", [0, 1, 7, 40])
async def test_budget_forces_the_end_sequence_through_sglangs_sampler(
    state: ServerState, budget: int
) -> None:
    word = ids(state, " the")[0]
    out = await run_budget(state, budget, [word], steps=budget + 10)
    end = ids(state, ".\n\n</think>") if budget else ids(state, "</think>")
    assert out[:budget] == [word] * budget  # free until the budget
    assert out[budget : budget + len(end)] == end  # then exactly the end sequence
    assert out[budget + len(end) :] == [word] * (10 - len(end))  # then free again


# -- the stream: deltas, abort, errors, shutdown ------------------------------------------------


def chunk(index: int, text: str, ids_: list[int], finish: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "id": f"sub{index}",
        "prompt_tokens": 4,
        "completion_tokens": len(ids_),
        "cached_tokens": 2,
        "finish_reason": {"type": finish, "matched": 2} if finish else None,
        "output_token_logprobs": [[-0.5, t, None] for t in ids_],
    }
    return {"index": index, "text": text, "output_ids": ids_, "meta_info": meta}


def test_cumulative_stream_becomes_deltas_per_sample() -> None:
    deltas = StreamDeltas(incremental=False)
    outs = [
        deltas(chunk(0, "He", [1])),
        deltas(chunk(1, "Yo", [7])),
        deltas(chunk(0, "Hello", [1, 2])),
        deltas(chunk(1, "Yo!", [7, 8], finish="stop")),
    ]
    assert [(o.index, o.text, o.token_ids) for o in outs] == [
        (0, "He", [1]),
        (1, "Yo", [7]),
        (0, "llo", [2]),
        (1, "!", [8]),
    ]
    assert outs[2].output_token_logprobs == [[-0.5, 2, None]]
    assert outs[3].finish_reason is not None and outs[3].finish_reason.type == "stop"
    assert (outs[2].prompt_tokens, outs[2].completion_tokens, outs[2].cached_tokens) == (4, 2, 2)
    aborted = deltas.aborted(2)  # sample 1 had finished; only sample 0 ends as aborted
    assert [(o.index, o.finish_reason and o.finish_reason.type) for o in aborted] == [(0, "abort")]


def test_incremental_stream_passes_through() -> None:
    deltas = StreamDeltas(incremental=True)
    first, second = deltas(chunk(0, "He", [1])), deltas(chunk(0, "llo", [2]))
    assert (first.text, second.text, second.token_ids) == ("He", "llo", [2])


class FakeTokenizerManager:
    """Behaves as SGLang's: normalises the real GenerateReqInput, streams cumulative
    dicts, and aborts what it dispatched when its generator is interrupted."""

    def __init__(self, words: int = 3, hang: bool = False):
        self.words, self.hang = words, hang
        self.aborted: list[str] = []
        self.rid_to_state: dict[str, Any] = {}
        self.gracefully_exit = False
        self.asyncio_tasks: set[asyncio.Task[Any]] = set()

    async def generate_request(self, obj: Any, request: Any) -> AsyncIterator[dict[str, Any]]:
        obj.normalize_batch_and_arguments()
        samples = getattr(obj, "parallel_sample_num", 1)
        sub_rids = [f"random-{i}" for i in range(samples)]  # SGLang makes these up
        self.rid_to_state.update(dict.fromkeys(sub_rids))
        live: list[list[int]] = [[] for _ in range(samples)]
        try:
            if "context" in str(obj.sampling_params):
                raise ValueError("The input (9 tokens) is longer than the model's context length")
            for step in range(1, self.words + 1):
                for index in range(samples):
                    live[index].append(step)
                    done = "stop" if step == self.words and not self.hang else None
                    out = chunk(index, "w" * step, [], done)
                    out["output_ids"] = live[index]  # SGLang's live list, as it streams it
                    yield out
            await asyncio.sleep(0)  # a burst: the consumer reads after the lists grew
            if self.hang:
                await asyncio.Event().wait()
        except BaseException:
            self.aborted += sub_rids
            raise
        finally:
            for rid in sub_rids:
                self.rid_to_state.pop(rid, None)


class FakeEngine:
    def __init__(self, manager: FakeTokenizerManager):
        self.tokenizer_manager = manager
        self.shut_down = False

    def shutdown(self) -> None:
        self.shut_down = True


@pytest.fixture
def backend() -> SGLangEngine:
    return SGLangEngine(load_config({"model_path": "/m"}, environ={}))


def attach(backend: SGLangEngine, manager: FakeTokenizerManager) -> FakeEngine:
    fake = FakeEngine(manager)
    backend._engine = fake
    return fake


async def test_generate_streams_deltas_for_each_sample(backend: SGLangEngine) -> None:
    attach(backend, FakeTokenizerManager(words=3))
    request = EngineRequest(rid="r1", input_ids=[1, 2], sampling_params={"n": 2})
    outs = [o async for o in backend.generate(request)]
    assert "".join(o.text for o in outs if o.index == 1) == "www"
    # One character and one token per step, though the id list kept growing meanwhile.
    assert [(o.text, o.token_ids) for o in outs if o.index == 0] == [
        ("w", [1]),
        ("w", [2]),
        ("w", [3]),
    ]
    assert [o.index for o in outs if o.finished] == [0, 1]
    assert await backend.health() and backend.num_running_requests == 0


async def test_abort_ends_every_sample_and_aborts_in_sglang(backend: SGLangEngine) -> None:
    manager = FakeTokenizerManager(hang=True)
    attach(backend, manager)
    request = EngineRequest(rid="r2", input_ids=[1], sampling_params={"n": 2})
    stream = backend.generate(request)
    first = await anext(stream)
    assert backend.num_running_requests == 2
    await backend.abort("r2")
    rest = [o async for o in stream]
    assert not first.finished
    ended = [(o.index, o.finish_reason.type) for o in rest if o.finish_reason is not None]
    assert sorted(ended) == [(0, "abort"), (1, "abort")]
    assert manager.aborted == ["random-0", "random-1"]  # the ids SGLang made up, too


async def test_closing_the_stream_aborts_in_sglang(backend: SGLangEngine) -> None:
    manager = FakeTokenizerManager(hang=True)
    attach(backend, manager)
    stream = backend.generate(EngineRequest(rid="r3", input_ids=[1]))
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    assert manager.aborted == ["random-0"] and backend.num_running_requests == 0


async def test_sglang_value_errors_are_client_errors(backend: SGLangEngine) -> None:
    attach(backend, FakeTokenizerManager())
    request = EngineRequest(rid="r4", input_ids=[1], sampling_params={"custom_params": "context"})
    with pytest.raises(ContextLengthExceededError, match="context length"):
        [o async for o in backend.generate(request)]
    with pytest.raises(InvalidRequestError, match="input_ids"):
        bad = EngineRequest(rid="r5")  # neither prompt nor input_ids: SGLang refuses
        [o async for o in backend.generate(bad)]


async def test_handle_loop_keeps_our_sigterm_handler(backend: SGLangEngine) -> None:
    loop = asyncio.get_running_loop()

    class Manager:
        def auto_create_handle_loop(self) -> None:  # what SGLang does from the main thread
            loop.add_signal_handler(signal.SIGTERM, lambda: None)

    def ours(signum: int, frame: Any) -> None: ...

    previous = signal.signal(signal.SIGTERM, ours)
    try:
        backend._start_handle_loop(Manager())
        assert signal.getsignal(signal.SIGTERM) is ours
    finally:
        signal.signal(signal.SIGTERM, previous)


async def test_shutdown_stops_sglang_once(backend: SGLangEngine) -> None:
    manager = FakeTokenizerManager(hang=True)
    fake = attach(backend, manager)
    loop_task = asyncio.create_task(asyncio.Event().wait())
    manager.asyncio_tasks.add(loop_task)
    await backend.shutdown()
    await asyncio.sleep(0)
    assert fake.shut_down and loop_task.cancelled()
    assert not await backend.health()
    await backend.shutdown()  # idempotent


def test_worker_nodes_are_refused_with_the_way_to_start_them() -> None:
    config = load_config(
        {"model_path": "/m", "sglang_args": ["--nnodes", "2", "--node-rank", "1"]}, environ={}
    )
    with pytest.raises(ConfigError, match="sglang serve"):
        SGLangEngine(config)
