"""The one place where exceptions become HTTP responses.

Starlette walks each exception's class hierarchy to find a handler, so every
``OmniError`` subclass is served by ``_omni_error``; framework errors (unknown route,
wrong method, request validation) are mapped to the same OpenAI envelope. Anything
else is a bug: logged with its traceback, answered with a 500 that carries no internals.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from omni_sglang.errors import InvalidRequestError, OmniError

logger = logging.getLogger(__name__)

_HTTP_TYPES = {
    401: ("authentication_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "payload_too_large"),
}


def error_body(
    message: str, error_type: str, code: str | None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def omni_error_body(exc: OmniError) -> dict[str, Any]:
    return error_body(exc.message, exc.error_type, exc.code, exc.param)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


def validation_error(exc: ValidationError | RequestValidationError) -> InvalidRequestError:
    """Pydantic's errors as one readable 400: every problem, each with its field path."""
    problems = []
    first_param = None
    for err in exc.errors()[:10]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        # Discriminated unions put the tag in the path; it is noise for a client.
        path = ".".join(p for p in loc if not p.endswith("Part") and p != "function-after")
        first_param = first_param or path or None
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{path}: {message}" if path else message)
    return InvalidRequestError("invalid request: " + "; ".join(problems), param=first_param)


async def _omni_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OmniError)
    if exc.status_code >= 500:
        logger.error("%s on %s: %s", type(exc).__name__, request.url.path, exc.message)
    headers = {"Retry-After": "5"} if exc.status_code == 503 else None
    return _json(exc.status_code, omni_error_body(exc), headers)


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return await _omni_error(request, validation_error(exc))


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    error_type, code = _HTTP_TYPES.get(exc.status_code, ("invalid_request_error", None))
    message = str(exc.detail)
    if exc.status_code == 404:
        message = f"no route {request.method} {request.url.path}"
    body = error_body(message, error_type, code)
    return _json(exc.status_code, body, dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return _json(500, error_body("internal server error", "internal_error", "internal_error"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OmniError, _omni_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, _unexpected)
