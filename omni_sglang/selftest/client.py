"""The HTTP calls the checks make: plain httpx, as any client of the NIM API would."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from omni_sglang.selftest.result import CheckFailed


@dataclass
class Streamed:
    """A streamed chat completion put back together (choice 0)."""

    reasoning: str = ""
    content: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    finish_reason: str | None = None
    ttft: float | None = None  # seconds to the first chunk with text
    seconds: float = 0.0


class Client:
    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 600) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self.model = ""  # set by the first check, from /v1/models

    def close(self) -> None:
        self.http.close()

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(path, json=body)

    def ok_json(self, resp: httpx.Response) -> dict[str, Any]:
        if resp.status_code != 200:
            raise CheckFailed(
                f"{resp.request.url.path} answered {resp.status_code}: {resp.text[:300]}"
            )
        try:
            body: dict[str, Any] = resp.json()
            return body
        except json.JSONDecodeError as exc:
            raise CheckFailed(f"{resp.request.url.path} answered 200 without JSON: {exc}") from exc

    def chat(self, **body: Any) -> dict[str, Any]:
        """A chat completion that must succeed; returns the response body."""
        return self.ok_json(self.post("/v1/chat/completions", {"model": self.model, **body}))

    def stream_chat(self, **body: Any) -> Streamed:
        out = Streamed()
        start = time.monotonic()
        request = {"model": self.model, "stream": True, **body}
        request.setdefault("stream_options", {"include_usage": True})
        with self.http.stream("POST", "/v1/chat/completions", json=request) as resp:
            if resp.status_code != 200:
                resp.read()
                raise CheckFailed(f"streaming answered {resp.status_code}: {resp.text[:300]}")
            for line in resp.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[len("data: ") :])
                if "error" in chunk:
                    raise CheckFailed(f"the stream carried an error: {chunk['error']}")
                out.usage = chunk.get("usage") or out.usage
                for choice in chunk.get("choices", []):
                    delta = choice.get("delta", {})
                    text = (delta.get("reasoning") or "") + (delta.get("content") or "")
                    if text and out.ttft is None:
                        out.ttft = time.monotonic() - start
                    out.reasoning += delta.get("reasoning") or ""
                    out.content += delta.get("content") or ""
                    out.tool_calls += delta.get("tool_calls") or []
                    out.finish_reason = choice.get("finish_reason") or out.finish_reason
        out.seconds = time.monotonic() - start
        return out
