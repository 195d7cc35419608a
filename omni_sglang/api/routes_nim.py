"""NIM's service endpoints: models, health probes, version, metadata, license and
manifest."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from omni_sglang import __version__
from omni_sglang.api.io import json_response
from omni_sglang.api.routes_openai import server_state
from omni_sglang.checkpoint_info import license_info, manifest_info
from omni_sglang.state import ServerState

router = APIRouter()
health_router = APIRouter()  # probes answer without an API key, as NIM's do


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.omni
    return state


@health_router.get("/v1/health/live")
async def live(request: Request) -> Response:
    failure = _state(request).engine.failure
    if failure is not None:  # the process is about to exit; a liveness probe restarts it too
        return json_response({"object": "health.response", "message": failure.message}, 503)
    return json_response({"object": "health.response", "message": "Service is live."})


@health_router.get("/v1/health/ready")
async def ready(request: Request) -> Response:
    state = _state(request)
    if state.ready and await state.engine.health():
        return json_response({"object": "health.response", "message": "Service is ready."})
    message = "Service is shutting down." if state.draining else "Service is not ready."
    if state.engine.failure is not None:
        message = state.engine.failure.message
    return json_response({"object": "health.response", "message": message}, status=503)


@router.get("/v1/models")
async def models(request: Request) -> Response:
    state = _state(request)
    max_len = state.model_info.max_model_len if state.ready else state.config.max_model_len
    root = state.model_info.model_path if state.ready else state.config.model_path
    data: list[dict[str, Any]] = [
        {
            "id": name,
            "object": "model",
            "created": int(state.started_at),
            "owned_by": "system",
            "root": root,
            "parent": None,
            "max_model_len": max_len,
        }
        for name in state.model_names
    ]
    return json_response({"object": "list", "data": data})


@router.get("/metrics")
@router.get("/v1/metrics")
async def prometheus_metrics() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/version")
async def version() -> Response:
    return json_response({"release": __version__, "api": "1.0.0"})


@router.get("/v1/metadata")
async def metadata(request: Request) -> Response:
    state = _state(request)
    return json_response(
        {
            "version": __version__,
            "modelInfo": [
                {
                    "shortName": name,
                    "modelUrl": state.config.model_path
                    or f"builtin:{state.config.tiny_model_name}",
                }
                for name in state.model_names
            ],
            "engine": state.config.engine,
            "plugins": {
                kind: type(plugin).__name__
                for kind, plugin in vars(state.plugins).items()
                if plugin is not None
            },
        }
    )


@router.get("/v1/license")
async def license_(request: Request) -> Response:
    """NIM's license endpoint: what the served checkpoint's folder says (no network)."""
    state = server_state(request)
    built_in = state.config.model_path is None
    body = await asyncio.to_thread(license_info, state.model_info.model_path, built_in)
    return json_response(body)


@router.get("/v1/manifest")
async def manifest(request: Request) -> Response:
    """NIM's manifest endpoint: the served checkpoint's files, sizes and checksums."""
    state = server_state(request)
    name = state.model_names[0]
    body = await asyncio.to_thread(manifest_info, state.model_info.model_path, name)
    return json_response(body)
