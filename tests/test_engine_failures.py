"""When the engine dies under load: every in-flight request ends with a clear 503 (an SSE
error event and ``[DONE]`` for streams), the probes say 503, new requests get 503 with
``Retry-After``, and the process exits non-zero with its children gone, so a supervisor
restarts it. On SGLang the fault is real (its scheduler or detokenizer SIGKILLed); on the
cpu engine its worker thread is made to raise. Hard timeouts: a hang fails the test."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Any

import httpx
import psutil
import pytest

from omni_sglang.engines.base import EngineRequest, FinishReason
from omni_sglang.engines.cpu.engine import CpuEngine
from omni_sglang.engines.sglang_stream import failed_in_sglang
from omni_sglang.errors import (
    EngineDeadError,
    EngineError,
    InvalidRequestError,
    ServiceUnavailableError,
)
from tests.conftest import Server, engine_args

MODEL = "nvidia/nemotron-3-nano-omni-30b-a3b-reasoning"
#: Long enough to be in flight when the fault comes (min_tokens: no early EOS).
LONG = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 4000,
    "min_tokens": 4000,
}
IN_FLIGHT = 16
#: The issue's bounds: in-flight requests end within 5 s, the process exits within 30 s.
END_WITHIN_S = 5.0
EXIT_WITHIN_S = 30.0


async def _stream(client: httpx.AsyncClient, url: str) -> tuple[int, list[str], float]:
    async with client.stream("POST", url, json={**LONG, "stream": True}) as response:
        lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
        return response.status_code, lines, time.monotonic()


async def _plain(client: httpx.AsyncClient, url: str) -> tuple[int, Any, float]:
    response = await client.post(url, json=LONG)
    return response.status_code, response.json(), time.monotonic()


def _running(metrics: httpx.Response) -> float:
    for line in metrics.text.splitlines():
        if line.startswith("omni_sglang_engine_running_requests "):
            return float(line.split()[1])
    return 0.0


def _sglang_child(server: Server, role: str) -> psutil.Process:
    for child in psutil.Process(server.proc.pid).children(recursive=True):
        if f"sglang::{role}" in " ".join(child.cmdline()):
            return child
    raise AssertionError(f"no sglang::{role} process under the server")


async def _load_then_kill(server: Server, victim: psutil.Process) -> tuple[list[Any], float]:
    url = server.url + "/v1/chat/completions"
    async with httpx.AsyncClient(timeout=60) as client:
        streams = [asyncio.create_task(_stream(client, url)) for _ in range(IN_FLIGHT)]
        plains = [asyncio.create_task(_plain(client, url)) for _ in range(IN_FLIGHT)]
        deadline = time.monotonic() + 60
        while _running(await client.get(server.url + "/metrics")) < 2 * IN_FLIGHT:
            assert time.monotonic() < deadline, "the requests never all reached the engine"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # some tokens out: the streams' 200 has been sent
        assert not any(t.done() for t in streams + plains), "requests ended before the fault"
        victim.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        results = await asyncio.wait_for(asyncio.gather(*streams, *plains), END_WITHIN_S + 5)
        return results, killed


def _check_failed_requests(results: list[Any], killed: float) -> None:
    for status, body, ended in results:
        assert ended - killed < END_WITHIN_S
        if isinstance(body, list):  # a stream: 200 already sent, then the error event
            assert status == 200 and body[-1] == "data: [DONE]"
            error = json.loads(body[-2].removeprefix("data: "))["error"]
        else:
            assert status == 503
            error = body["error"]
        assert error["code"] == "engine_dead" and "restarting" in error["message"]


def _check_refusing_then_exits(server: Server, killed: float, children: list[Any]) -> None:
    probes = {p: httpx.get(server.url + p, timeout=5) for p in ("/v1/health/ready", "/health")}
    assert all(r.status_code == 503 for r in probes.values())
    refused = httpx.post(server.url + "/v1/chat/completions", json=LONG, timeout=5)
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert refused.json()["error"]["code"] == "engine_dead"
    returncode = server.proc.wait(timeout=EXIT_WITHIN_S)
    assert returncode != 0 and time.monotonic() - killed < EXIT_WITHIN_S
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"orphaned: {[p.pid for p in alive]}"
    assert "error: the engine stopped" in server.log()


@pytest.mark.parametrize("role", ["scheduler", "detokenizer"])
def test_sglang_process_killed_under_load(module_server_factory, role: str) -> None:  # type: ignore[no-untyped-def]
    server = module_server_factory(*engine_args("sglang", "--no-warmup"))
    children = psutil.Process(server.proc.pid).children(recursive=True)
    results, killed = asyncio.run(_load_then_kill(server, _sglang_child(server, role)))
    _check_failed_requests(results, killed)
    _check_refusing_then_exits(server, killed, children)


async def test_cpu_engine_worker_dying_fails_in_flight_and_later_requests(
    tiny_model_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = CpuEngine(tiny_model_path)
    failures: list[EngineDeadError] = []
    engine.on_failure = failures.append
    await engine.start()
    try:
        params = {"max_new_tokens": 4000, "min_new_tokens": 4000}

        async def consume(i: int) -> BaseException | None:
            try:
                async for _ in engine.generate(EngineRequest(f"r{i}", dict(params), prompt="hi")):
                    pass
            except EngineDeadError as exc:
                return exc
            return None

        tasks = [asyncio.create_task(consume(i)) for i in range(4)]
        while engine.num_running_requests < 4:
            await asyncio.sleep(0.05)

        def broken_step() -> None:
            raise RuntimeError("injected fault")

        monkeypatch.setattr(engine, "_step", broken_step)
        ended = await asyncio.wait_for(asyncio.gather(*tasks), END_WITHIN_S)
        assert all(isinstance(e, EngineDeadError) for e in ended)
        assert failures == [engine.failure] and "injected fault" in failures[0].message
        assert not await engine.health()
        with pytest.raises(EngineDeadError):
            async for _ in engine.generate(EngineRequest("late", dict(params), prompt="hi")):
                pass
    finally:
        await engine.shutdown()


# -- one request's fault stays that request's ---------------------------------------------------

PROCESSOR_STEPS = 300


async def _generate(client: httpx.AsyncClient, server: Server, processor: str, params: Any) -> Any:
    body = {
        "text": "hi",
        "sampling_params": {
            "max_new_tokens": PROCESSOR_STEPS,
            "ignore_eos": True,
            "custom_params": params,
        },
        "custom_logit_processor": processor,
    }
    return await client.post(server.url + "/generate", json=body)


async def _raising_processor_among_others(server: Server, processor: str) -> list[Any]:
    async with httpx.AsyncClient(timeout=120) as client:
        others = [
            asyncio.create_task(_generate(client, server, processor, {"force": [5, 6, 7]}))
            for _ in range(2)
        ]
        deadline = time.monotonic() + 60
        while _running(await client.get(server.url + "/metrics")) < 2:
            assert time.monotonic() < deadline, "the requests never reached the engine"
            await asyncio.sleep(0.05)
        # Same processor, same batch: only this request's row raises.
        raising = await _generate(client, server, processor, {"raise_at": 2})
        assert not any(t.done() for t in others), "the others ended before the fault"
        return [raising, *await asyncio.gather(*others)]


def test_a_raising_logits_processor_fails_only_its_request(
    engine_server: Server, force_tokens_processor: str
) -> None:
    raising, *others = asyncio.run(
        asyncio.wait_for(
            _raising_processor_among_others(engine_server, force_tokens_processor), 180
        )
    )
    assert raising.status_code == 500, raising.text
    error = raising.json()["error"]
    assert error["code"] == "engine_error"
    assert "ForceTokens raised RuntimeError: asked to raise at step 2" in error["message"]
    for other in others:
        assert other.status_code == 200, other.text
        assert other.json()["output_ids"][:3] == [5, 6, 7]
        assert other.json()["meta_info"]["completion_tokens"] == PROCESSOR_STEPS
    assert httpx.get(engine_server.url + "/health", timeout=5).status_code == 200
    after = httpx.post(
        engine_server.url + "/generate",
        json={"text": "hi", "sampling_params": {"max_new_tokens": 3}},
        timeout=60,
    )
    assert after.status_code == 200


def test_a_processor_that_does_not_load_is_refused(engine_server: Server) -> None:
    body = {"text": "hi", "custom_logit_processor": '{"callable": "00"}'}
    response = httpx.post(engine_server.url + "/generate", json=body, timeout=60)
    assert response.status_code == 400, response.text
    assert "could not be deserialized" in response.json()["error"]["message"]
    assert httpx.get(engine_server.url + "/health", timeout=5).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"regex": "a++("},
        {"json_schema": '{"type": "object", "properties": {"a": {"$ref": "#/nope"}}}'},
    ],
    ids=["regex", "json_schema"],
)
def test_a_grammar_that_does_not_compile_fails_only_its_request(
    engine_server: Server, params: dict[str, str]
) -> None:
    """Sent beside requests in flight: the bad grammar is that request's 400 (SGLang
    compiles it in the scheduler), the others finish, the engine serves on."""
    url = engine_server.url + "/generate"
    good = {"text": "hi", "sampling_params": {"max_new_tokens": 16, "min_new_tokens": 16}}

    async def run() -> tuple[httpx.Response, list[httpx.Response]]:
        async with httpx.AsyncClient(timeout=120) as client:
            others = [asyncio.create_task(client.post(url, json=good)) for _ in range(4)]
            bad = {"text": "hi", "sampling_params": {"max_new_tokens": 4, **params}}
            refused = await client.post(url, json=bad)
            return refused, list(await asyncio.gather(*others))

    refused, others = asyncio.run(run())
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["message"]
    assert [r.status_code for r in others] == [200] * 4
    assert all(r.json()["meta_info"]["completion_tokens"] == 16 for r in others)
    assert httpx.get(engine_server.url + "/health", timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, InvalidRequestError),  # a grammar that does not compile
        (503, ServiceUnavailableError),  # retracted under KV pressure: retry
        (500, EngineError),  # out of memory, a processor that raised
        (None, None),  # a disconnect or abort_request: a finish reason, not an error
    ],
)
def test_sglang_aborts_with_a_status_are_that_requests_error(
    status: int | None, error: type | None
) -> None:
    failed = failed_in_sglang(FinishReason("abort", message="why"), status)
    assert (None if failed is None else type(failed)) is error
    assert failed is None or failed.message == "why"


def test_a_prompt_beyond_sglangs_kv_pool_is_refused_and_the_engine_serves_on(
    module_server_factory,  # type: ignore[no-untyped-def]
) -> None:
    pool = 4096  # tokens: far below tiny-omni's 16384-token context
    server = module_server_factory(
        "--engine", "sglang", "--no-warmup", "--", "--max-total-tokens", str(pool)
    )
    url = server.url + "/v1/chat/completions"
    long = {**LONG, "messages": [{"role": "user", "content": "Paris " * pool}], "max_tokens": 8}
    long.pop("min_tokens")
    refused = httpx.post(url, json=long, timeout=120)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert "exceeds the maximum allowed length" in error["message"]
    short = {**long, "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(url, json=short, timeout=120).status_code == 200
