"""OpenAPI documents for bodies we parse ourselves (for error control), so that clients
and schema-driven fuzzers still see the real request schema."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

_REF = "#/components/schemas/{model}"
_BODY_MODELS: list[type[BaseModel]] = []


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    _BODY_MODELS.append(model)
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}
            },
        }
    }


def install_openapi(app: FastAPI, dependencies: Sequence[Any] = ()) -> None:
    """The schema at ``/openapi.json`` and Swagger UI at ``/docs``, behind
    ``dependencies`` (the API key: FastAPI's own docs routes take no dependencies)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in _BODY_MODELS:
            body = model.model_json_schema(ref_template=_REF)
            components.update(body.pop("$defs", {}))
            components[model.__name__] = body
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]

    async def schema() -> JSONResponse:
        return JSONResponse(build())

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    for path, endpoint in (("/openapi.json", schema), ("/docs", docs)):
        app.add_api_route(path, endpoint, include_in_schema=False, dependencies=list(dependencies))
