"""Prometheus metrics at /metrics and /v1/metrics reflect the traffic served."""

from __future__ import annotations

import base64
import re

import httpx

from omni_sglang.media import synth
from tests.conftest import TINY, Server


def metric(text: str, name: str, labels: str = "") -> float:
    pattern = "^" + re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "")
    found = re.search(pattern + r" (\S+)$", text, re.MULTILINE)
    assert found, f"{name}{{{labels}}} missing"
    return float(found.group(1))


def test_metrics_follow_requests(engine_server: Server) -> None:
    before = httpx.get(engine_server.url + "/metrics").text
    image = base64.b64encode(synth.image_bytes("PNG", (64, 48))).decode()
    body = {
        "model": TINY,
        "max_tokens": 6,
        "ignore_eos": True,
        "stream": True,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Hi"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}},
                ],
            }
        ],
    }
    with httpx.stream("POST", engine_server.url + "/v1/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        list(resp.iter_lines())
    httpx.post(engine_server.url + "/v1/chat/completions", json={"model": "nope", "messages": []})
    after = httpx.get(engine_server.url + "/v1/metrics").text
    ok = 'route="/v1/chat/completions",status="200"'
    assert (
        metric(after, "omni_sglang_requests_total", ok)
        > metric(before, "omni_sglang_requests_total", ok)
        if ok in before
        else True
    )
    assert metric(after, "omni_sglang_requests_total", 'route="/v1/chat/completions",status="400"')
    assert metric(after, "omni_sglang_time_to_first_token_seconds_count") > 0
    assert metric(after, "omni_sglang_inter_token_latency_seconds_count") > 0
    assert metric(after, "omni_sglang_completion_tokens_total") >= 6
    assert metric(after, "omni_sglang_media_preparation_seconds_count") >= 1
    assert metric(after, "omni_sglang_requests_in_flight") == 0
    assert "omni_sglang_engine_running_requests" in after
