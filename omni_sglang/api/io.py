"""Request bodies in, JSON and SSE out, and client-disconnect handling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ValidationError

from omni_sglang.api.errors import omni_error_body, validation_error
from omni_sglang.errors import (
    ClientClosedRequestError,
    InvalidRequestError,
    OmniError,
    PayloadTooLargeError,
)

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


async def read_json(request: Request, model: type[M], max_bytes: int) -> M:
    """Parse and validate a JSON body; every failure is a 4xx that says what was wrong."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(f"request body exceeds the {max_bytes}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError(f"request body exceeds the {max_bytes}-byte limit")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        raise InvalidRequestError("the request body is empty; send a JSON object")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    return validated(model, data)


def validated(model: type[M], data: dict[str, Any]) -> M:
    """``data`` as ``model``, or the 400 that names every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


async def primed(stream: AsyncIterator[T]) -> AsyncIterator[T]:
    """Pull the first item now, so request errors surface as a 4xx before the 200 of SSE."""
    try:
        first = await stream.__anext__()
    except StopAsyncIteration:
        return _empty()

    async def chained() -> AsyncIterator[T]:
        try:
            yield first
            async for item in stream:
                yield item
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    return chained()


async def _empty() -> AsyncIterator[Any]:
    return
    yield


def sse_response(events: AsyncIterator[dict[str, Any]], typed: bool = False) -> StreamingResponse:
    """Server-sent events; an error after the 200 becomes an error event, then [DONE].
    ``typed``: the Responses API's style, each event named by its ``type`` in an
    ``event:`` line, and no [DONE]."""

    async def body() -> AsyncIterator[bytes]:
        try:
            async for event in events:
                name = b"event: " + event["type"].encode() + b"\n" if typed else b""
                yield name + b"data: " + orjson.dumps(event) + b"\n\n"
        except OmniError as exc:
            yield b"data: " + orjson.dumps(omni_error_body(exc)) + b"\n\n"
        except Exception:
            logger.exception("stream failed")
            err = {
                "error": {
                    "message": "internal server error",
                    "type": "internal_error",
                    "param": None,
                    "code": "internal_error",
                }
            }
            yield b"data: " + orjson.dumps(err) + b"\n\n"
        finally:
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]
        if not typed:
            yield b"data: [DONE]\n\n"

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Run ``work``; if the client goes away first, cancel it (aborting its requests)."""
    task = asyncio.ensure_future(work)

    async def wait_disconnect() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return

    watcher = asyncio.ensure_future(wait_disconnect())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
        watcher.cancel()
    if task.cancelled() or not task.done():
        with contextlib.suppress(BaseException):
            await task
        raise ClientClosedRequestError("the client disconnected")
    return task.result()
