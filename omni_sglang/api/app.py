"""The FastAPI application: routers, auth, error mapping, and the engine's lifetime.

The engine loads in the background after the socket opens, so ``/v1/health/live``
answers at once and ``/v1/health/ready`` says 503 until the model can serve, as NIM's
probes expect. A load failure is fatal: the callback given by the launcher stops the
server with a non-zero exit.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware

from omni_sglang import __version__, metrics, playground
from omni_sglang.api import (
    routes_audio,
    routes_nim,
    routes_openai,
    routes_responses,
    routes_sglang,
    routes_tokenize,
)
from omni_sglang.api.errors import install_error_handlers
from omni_sglang.api.openapi import install_openapi
from omni_sglang.engines.base import EngineRequest
from omni_sglang.errors import AuthenticationError, ConfigError, EngineDeadError, StartupError
from omni_sglang.state import ServerState

logger = logging.getLogger(__name__)


def _require_api_key(request: Request) -> None:
    state: ServerState = request.app.state.omni
    expected = state.config.api_key
    if not expected:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    # compare_digest: the time taken must not reveal how much of the key matched.
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise AuthenticationError("a valid API key is required: send 'Authorization: Bearer <key>'")


async def _warm_up(state: ServerState) -> None:
    started = time.monotonic()
    request = EngineRequest(
        rid="warmup", prompt="Hello", sampling_params={"max_new_tokens": 2, "temperature": 0}
    )
    async for _ in state.engine.generate(request):
        pass
    logger.info("warm-up done in %.2f s", time.monotonic() - started)


async def start_engine(state: ServerState) -> None:
    started = time.monotonic()
    logger.info("loading the model on the %s engine ...", state.config.engine)
    await state.engine.start()
    logger.info("model loaded in %.1f s", time.monotonic() - started)
    started = time.monotonic()
    await asyncio.to_thread(state.prepare_plugins)
    if state.media_loader is not None:
        await state.media_loader.warmup()  # the first video decode imports codecs (seconds)
    logger.info("plugins prepared in %.1f s", time.monotonic() - started)
    if state.config.warmup:
        await _warm_up(state)
    state.ready = True
    logger.info("ready: serving %s", ", ".join(state.model_names))


def create_app(
    state: ServerState, on_fatal: Callable[[BaseException], None] | None = None
) -> FastAPI:
    def engine_failed(failure: EngineDeadError) -> None:
        # Readiness says so at once; the process exits after the drain notice (load
        # balancers see the 503 first), non-zero, so its supervisor restarts it.
        state.start_draining()
        notice = state.config.drain_notice_seconds
        logger.error("the engine failed; exiting in %.1f s for a restart", notice)
        if on_fatal is not None:
            asyncio.get_running_loop().call_later(notice, on_fatal, failure)

    state.engine.on_failure = engine_failed

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def load() -> None:
            try:
                await start_engine(state)
            except Exception as exc:
                logger.error("engine start-up failed: %s", exc)
                if not isinstance(exc, ConfigError):
                    exc = StartupError(
                        f"the {state.config.engine} engine did not start: "
                        f"{type(exc).__name__}: {exc}"
                    )
                if on_fatal is not None:
                    on_fatal(exc)

        loader = asyncio.create_task(load())
        try:
            yield
        finally:
            state.start_draining()
            loader.cancel()
            await state.engine.shutdown()

    # The documentation routes come from install_openapi, behind the API key.
    app = FastAPI(
        title="omni-sglang",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.omni = state
    if state.config.cors_allow_origins:  # off unless configured: browsers get no access
        app.add_middleware(
            CORSMiddleware,
            allow_origins=state.config.cors_allow_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
            # What our responses say in headers, readable from a page too.
            expose_headers=["Warning", "X-Sampling-Defaults", "Retry-After"],
        )
    install_error_handlers(app)
    metrics.bind_gauges(lambda: state.admission.active, lambda: state.engine.num_running_requests)

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.REQUESTS.labels(path, str(response.status_code)).inc()
        return response

    app.include_router(routes_nim.health_router)
    app.include_router(routes_sglang.health_router)
    secured = [Depends(_require_api_key)]
    app.include_router(routes_nim.router, dependencies=secured)
    app.include_router(routes_openai.router, dependencies=secured)
    app.include_router(routes_sglang.router, dependencies=secured)
    app.include_router(routes_tokenize.router, dependencies=secured)
    app.include_router(routes_responses.router, dependencies=secured)
    app.include_router(routes_audio.router, dependencies=secured)
    if state.config.playground:
        app.include_router(playground.router)
    install_openapi(app, dependencies=secured)
    return app
