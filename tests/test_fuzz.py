"""Schema-driven fuzzing: schemathesis generates requests from the server's own OpenAPI
document (valid ones and ones that break it), and every answer must be a 2xx or 4xx with
a JSON body (an OpenAI error envelope for 4xx, SSE for a valid stream), never a 5xx.

A small context (``--max-model-len``) bounds what a valid request can cost, so the
example count, not the model, sets the runtime. ``OMNI_SGLANG_FUZZ_EXAMPLES`` raises it
(``bench/soak_long.py`` does).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import httpx
import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.conftest import TINY, Server

EXAMPLES = int(os.environ.get("OMNI_SGLANG_FUZZ_EXAMPLES", "20"))
CONTEXT = 160
ERROR_KEYS = {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def fuzz_server(server_factory) -> Server:  # type: ignore[no-untyped-def]
    return server_factory("--no-warmup", "--max-model-len", str(CONTEXT))


@pytest.fixture(scope="module")
def api_schema(fuzz_server: Server) -> Any:
    return schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")


def check_response(resp: requests.Response) -> None:
    """The contract for any request, however broken: no 5xx; a 4xx is an error envelope;
    a JSON or SSE 2xx parses (an SSE stream has no error event and ends with [DONE])."""
    body = resp.request.body
    sent = body[:300] if isinstance(body, bytes | str) else b""
    described = f"{resp.request.method} {resp.request.url} {sent!r} -> {resp.status_code}: "
    described += resp.text[:500]
    assert resp.status_code < 500, described
    ctype = resp.headers.get("content-type", "")
    if resp.status_code >= 400:
        assert ctype.startswith("application/json"), described
        error = orjson.loads(resp.content).get("error")
        assert isinstance(error, dict) and set(error) == ERROR_KEYS, described
        assert isinstance(error["message"], str) and error["message"], described
    elif ctype.startswith("text/event-stream"):
        events = [ln[6:] for ln in resp.text.splitlines() if ln.startswith("data: ")]
        assert events and events[-1] == "[DONE]", described
        for event in events[:-1]:
            body = orjson.loads(event)
            assert "error" not in body, described
    elif ctype.startswith("application/json"):
        orjson.loads(resp.content)
    # Other 2xx bodies are SGLang's own plain ones (/health is empty, /flush_cache and
    # /metrics are text), kept for SGLang clients.


#: The three request bodies the schema documents, and the smallest valid core of each.
VALID_CORE: dict[str, dict[str, Any]] = {
    "POST /v1/chat/completions": {"model": TINY, "messages": [{"role": "user", "content": "Hi"}]},
    "POST /v1/completions": {"model": TINY, "prompt": "Hi"},
    "POST /generate": {"text": "Hi"},
}


def with_valid_core(case: Any) -> Any:
    """Keep every generated field but the few that must be right for the request to reach
    the engine: random sampling fields then meet real generation, not the model check."""
    if isinstance(case.body, dict):
        case.body.pop("input_ids", None)
        case.body.update(VALID_CORE[case.operation.label])
    return case


def fuzz_operation(operation: Any, mode: str, base_url: str) -> Counter[int]:
    """EXAMPLES generated cases of one operation: their status codes; raises the first
    contract breach."""
    statuses: Counter[int] = Counter()
    if mode == "valid-core":
        strategy = operation.as_strategy(GenerationMode.POSITIVE).map(with_valid_core)
    else:
        strategy = operation.as_strategy(GenerationMode(mode))

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        # Shrinking a failure could run for minutes; the failing example is reported as is.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    def run(case: Any) -> None:
        # schemathesis's own serialisation (what it generated is what is sent), but a plain
        # ``requests`` call so an event stream is read to its end, not cut at N events.
        kwargs = case.as_transport_kwargs(base_url=base_url)
        resp = requests.request(**{**kwargs, "timeout": 60})
        statuses[resp.status_code] += 1
        check_response(resp)

    try:
        run()
    except Unsatisfiable:
        # Negative mode has nothing to break in an operation without parameters or body.
        assert mode == "negative" and not statuses
    return statuses


# pytest 9 broke schemathesis's lazy ``from_fixture`` loader (it reads Function._nodeid),
# so the operations are walked here, one Hypothesis run each, failures collected.
@pytest.mark.parametrize("mode", ["positive", "negative", "valid-core"])
def test_fuzz_openapi(api_schema: Any, fuzz_server: Server, mode: str) -> None:
    failures, seen = [], {}
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if mode == "valid-core" and operation.label not in VALID_CORE:
            continue
        try:
            seen[operation.label] = fuzz_operation(operation, mode, fuzz_server.url)
        except AssertionError as exc:
            failures.append(f"{operation.label}: {exc}")
    print(mode, {label: dict(statuses) for label, statuses in seen.items()})
    assert not failures, "\n\n".join(failures)
    # The request bodies are documented, so every mode really exercised the three APIs
    # (and valid cores do reach the engine).
    for label in VALID_CORE:
        assert sum(seen[label].values()) >= EXAMPLES // 2, (label, seen[label])
        if mode == "valid-core":
            assert seen[label][200] > 0, (label, seen[label])


def test_server_healthy_after_fuzz(fuzz_server: Server) -> None:
    url = fuzz_server.url
    assert fuzz_server.proc.poll() is None, fuzz_server.log()
    assert httpx.get(url + "/v1/health/ready", timeout=30).status_code == 200
    info = httpx.get(url + "/server_info", timeout=30).json()
    assert info["num_running_requests"] == 0
    resp = httpx.post(
        url + "/v1/chat/completions",
        json={"model": TINY, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["usage"]["completion_tokens"] >= 1
