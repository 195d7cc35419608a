"""The playground page at ``/``: served from the package, self-contained (no CDN: it
works offline), loadable without the API key that every request it makes carries, and
off with ``--no-playground``."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import Server

ASSETS = {
    "/": "text/html",
    "/playground/playground.js": "text/javascript",
    "/playground/playground.css": "text/css",
}


@pytest.fixture(scope="module")
def locked(module_server_factory) -> Server:  # type: ignore[no-untyped-def]
    return module_server_factory("--api-key", "s3cret", "--no-warmup")  # type: ignore[no-any-return]


def test_the_page_and_its_files_load_without_the_key(locked: Server) -> None:
    for path, kind in ASSETS.items():
        got = httpx.get(locked.url + path)
        assert got.status_code == 200 and got.headers["content-type"].startswith(kind), path
        # Nothing from elsewhere: every script, style and call is this server's own.
        assert not re.search(r"(src|href)=\"(https?:)?//", got.text), path
        assert "https://" not in got.text and "http://" not in got.text, path
    page = httpx.get(locked.url + "/").text
    assert "/playground/playground.js" in page and "/playground/playground.css" in page
    assert httpx.get(locked.url + "/v1/models").status_code == 401  # the API still needs it


def test_unknown_files_are_404(locked: Server) -> None:
    for name in ("secret.txt", "..%2Fconfig.py", "__init__.py"):
        got = httpx.get(locked.url + "/playground/" + name)
        assert got.status_code == 404, name


def test_off_with_no_playground(module_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = module_server_factory("--no-playground", "--no-warmup")
    assert httpx.get(server.url + "/").status_code == 404
    assert httpx.get(server.url + "/playground/playground.js").status_code == 404
