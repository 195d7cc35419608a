"""Operations: capacity bound, per-request time limit, graceful SIGTERM, CORS, and no
secrets in logs."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from tests.conftest import TINY, Server

LONG = {
    "model": TINY,
    "messages": [{"role": "user", "content": "Go"}],
    "max_tokens": 4000,
    "ignore_eos": True,
    "chat_template_kwargs": {"enable_thinking": False},
}


def _stream_in_background(server: Server, started: threading.Event, box: dict) -> threading.Thread:
    def run() -> None:
        try:
            with httpx.stream(
                "POST",
                server.url + "/v1/chat/completions",
                json={**LONG, "stream": True},
                timeout=120,
            ) as resp:
                box["status"] = resp.status_code
                for count, line in enumerate(resp.iter_lines(), start=1):
                    if count == 3:
                        started.set()
                    box["last"] = line
        except httpx.HTTPError as exc:
            box["error"] = repr(exc)
        finally:
            started.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_capacity_bound_answers_503_with_retry_after(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(
        "--max-concurrent-requests", "1", "--no-warmup", "--thinking-budget-processor", ""
    )
    started, box = threading.Event(), {}
    thread = _stream_in_background(server, started, box)
    assert started.wait(60)
    full = httpx.post(server.url + "/v1/chat/completions", json={**LONG, "max_tokens": 2})
    assert full.status_code == 503 and full.headers["Retry-After"]
    assert "capacity" in full.json()["error"]["message"]
    assert httpx.get(server.url + "/v1/health/ready").status_code == 200  # probes still answer
    server.proc.send_signal(signal.SIGINT)  # ends the stream: nothing else to do here
    thread.join(60)


def test_request_timeout_aborts_and_frees(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(
        "--request-timeout", "1.5", "--no-warmup", "--thinking-budget-processor", ""
    )
    started = time.monotonic()
    resp = httpx.post(server.url + "/v1/chat/completions", json=LONG, timeout=60)
    assert resp.status_code == 504 and resp.json()["error"]["code"] == "request_timeout"
    assert time.monotonic() - started < 10
    with httpx.stream(
        "POST", server.url + "/v1/chat/completions", json={**LONG, "stream": True}, timeout=60
    ) as stream:
        lines = [line for line in stream.iter_lines() if line]
    assert "request_timeout" in lines[-2] and lines[-1] == "data: [DONE]"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if httpx.get(server.url + "/server_info").json()["num_running_requests"] == 0:
            break
        time.sleep(0.1)
    assert httpx.get(server.url + "/server_info").json()["num_running_requests"] == 0
    ok = httpx.post(server.url + "/v1/chat/completions", json={**LONG, "max_tokens": 3})
    assert ok.status_code == 200


def test_sigterm_drains_then_exits_zero(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(
        "--drain-notice",
        "2",
        "--drain-timeout",
        "3",
        "--no-warmup",
        "--thinking-budget-processor",
        "",
    )
    started, box = threading.Event(), {}
    thread = _stream_in_background(server, started, box)
    assert started.wait(60)
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert httpx.get(server.url + "/v1/health/ready").status_code == 503  # readiness first
    refused = httpx.post(server.url + "/v1/chat/completions", json={**LONG, "max_tokens": 2})
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert server.proc.wait(timeout=30) == 0  # in-flight work got its bounded time, then exit 0
    thread.join(30)
    assert box.get("status") == 200


@pytest.mark.parametrize("origins", [None, "https://app.example"])
def test_cors_off_unless_configured(server_factory, origins: str | None) -> None:  # type: ignore[no-untyped-def]
    args = ["--no-warmup", "--thinking-budget-processor", ""]
    if origins:
        args += ["--cors-allow-origins", origins]
    server = server_factory(*args)
    resp = httpx.options(
        server.url + "/v1/models",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
    )
    allowed = resp.headers.get("access-control-allow-origin")
    assert allowed == origins


def test_no_secrets_in_logs(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(
        "--api-key", "sk-topsecret-123", "--no-warmup", "--thinking-budget-processor", ""
    )
    auth = {"Authorization": "Bearer sk-topsecret-123"}
    prompt = "my confidential prompt text 42"
    media = "http://10.9.8.7/a.jpg?signature=querysecret77"
    httpx.post(
        server.url + "/v1/chat/completions",
        headers=auth,
        json={
            "model": TINY,
            "max_tokens": 2,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": prompt},
                        {"type": "image_url", "image_url": {"url": media}},
                    ],
                }
            ],
        },
    )
    httpx.post(
        server.url + "/v1/chat/completions",
        headers={"Authorization": "Bearer wrong"},
        json={"model": TINY, "messages": [{"role": "user", "content": prompt}]},
    )
    log = server.log_path.read_text()
    for secret in ("sk-topsecret-123", "confidential prompt", "querysecret77", "wrong"):
        assert secret not in log, secret
