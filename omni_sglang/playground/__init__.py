"""The playground at ``/``: a chat page served by the server itself. Static files from
this package (no build step, no CDN, works offline); the page holds no data, so it needs
no API key to load, and every request it makes to ``/v1`` carries the key typed into it."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from omni_sglang.errors import NotFoundError

router = APIRouter(include_in_schema=False)

#: The files the page is made of, and how each is served.
FILES = {
    "index.html": "text/html; charset=utf-8",
    "playground.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
}


def _file(name: str) -> Response:
    if name not in FILES:
        raise NotFoundError(f"the playground has no file {name!r}")
    body = resources.files(__name__).joinpath(name).read_bytes()
    return Response(body, media_type=FILES[name], headers={"Cache-Control": "no-cache"})


@router.get("/")
async def page() -> Response:
    return _file("index.html")


@router.get("/playground/{name}")
async def asset(name: str) -> Response:
    return _file(name)
