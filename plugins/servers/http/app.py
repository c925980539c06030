"""The ASGI application: the three dialects' routes on one model pool, behind the safety guard.

Every error comes out in the dialect of the path that was asked (errors.py): a route that does
not exist, a wrong method, a bad body, a model not found, a full queue. An exception that is a
bug is logged with its traceback and answered as a 500 without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scribe.plugins.servers.http import llamacpp_api, ollama_api, openai_api
from scribe.plugins.servers.http.errors import HttpError, JsonAnswer, error_answer
from scribe.plugins.servers.http.models_pool import ModelPool
from scribe.plugins.servers.http.safety import Guard
from scribe.plugins.servers.http.serving import ClientGone

log = logging.getLogger("scribe.plugins.http")

DEFAULT_PORT = 8012  # llama.vim's and llama.vscode's default endpoint


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    model: str | None = None
    precision: str = "auto"
    api_key: str | None = None
    allow_origins: tuple[str, ...] = field(default_factory=tuple)
    max_loaded: int = 2
    max_queue: int = 16
    max_body: int = 8 << 20  # bytes
    log_prompts: bool = False


async def status(request: Request) -> JsonAnswer:
    """scribe's own figures: each loaded model's requests, cancellations, last generation."""
    return JsonAnswer(request.app.state.pool.status())


async def _http_error(request: Request, err: Exception) -> Response:
    assert isinstance(err, HttpError)
    return error_answer(request.url.path, err)


async def _starlette_error(request: Request, err: Exception) -> Response:
    assert isinstance(err, HTTPException)
    message = {
        404: f"no such endpoint: {request.url.path}",
        405: f"{request.method} is not allowed on {request.url.path}",
    }.get(err.status_code, str(err.detail))
    return error_answer(request.url.path, HttpError(err.status_code, message))


async def _gone(request: Request, err: Exception) -> Response:
    return Response(status_code=499)  # nobody reads it: the client closed the connection


async def _bug(request: Request, err: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=err)
    return error_answer(request.url.path, HttpError(500, "internal error; see the server log"))


def create_app(settings: ServerSettings) -> Starlette:
    pool = ModelPool(settings.model, settings.precision, settings.max_loaded, settings.max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(pool.load_default()), asyncio.create_task(pool.reaper())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            pool.close()

    routes = [
        *openai_api.routes,
        *ollama_api.routes,
        *llamacpp_api.routes,
        Route("/scribe/status", status, methods=["GET"]),
    ]
    handlers: dict[Any, Any] = {
        HttpError: _http_error,
        HTTPException: _starlette_error,
        ClientGone: _gone,
        Exception: _bug,
    }
    guard = Middleware(
        Guard,
        bind_host=settings.host,
        allow_origins=settings.allow_origins,
        api_key=settings.api_key,
        max_body=settings.max_body,
    )
    app = Starlette(
        routes=routes, middleware=[guard], exception_handlers=handlers, lifespan=lifespan
    )
    app.state.pool = pool
    app.state.settings = settings
    return app
