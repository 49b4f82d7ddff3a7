"""The backend's aiohttp application: `create_app` maps every route to its handler, ties the
engine's lifetime to the application's; every error becomes TGI's JSON body (`httpedge.errors`).

Routes (handlers in `routes`, OpenAI's in `openai.routes`): `POST /generate`,
`POST /generate_stream`, `POST /` (compat: `stream` picks the form; `return_full_text` defaults
to true), `POST /invocations` (SageMaker: a generate, chat or completions body),
`POST /v1/chat/completions`, `POST /v1/completions`, `POST /tokenize`, `POST /chat_tokenize`
(a chat's prompt and its tokens), `GET /health` (also `/ping` and `GET /`), `GET /info`,
`GET /v1/models`, `GET /metrics`, `GET /openapi.json` (`openapi`). Every error a client can
cause is a 4xx with TGI's JSON body; a stream, once its body has parsed, always answers 200 and
reports failures as one in-stream `{"error", "error_type"}` event (`streaming`). The engine
starts and stops with the application (`cleanup_ctx`), after in-flight requests have ended.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from common.records import from_attributes
from httpedge.errors import error_middleware
from httpedge.openapi import add_openapi_route
from tgi_server.engine.base import ModelEngine
from tgi_server.health import HealthCheck
from tgi_server.http.app_keys import (
    ENGINE_KEY,
    HEALTH_KEY,
    METRICS_KEY,
    SERVICE_KEY,
    SETTINGS_KEY,
    SLOTS_KEY,
)
from tgi_server.http.openapi import backend_openapi
from tgi_server.http.routes import (
    compat_generate,
    generate,
    generate_stream,
    health,
    info,
    invocations,
    metrics,
    models,
    tokenize,
)
from tgi_server.metrics import BackendMetrics
from tgi_server.openai.routes import chat_completions, chat_tokenize, completions
from tgi_server.request_slots import RequestSlots
from tgi_server.service import GenerationService
from tgi_server.settings import BackendSettings
from tgi_server.validation import Limits

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(settings: BackendSettings, engine: ModelEngine) -> web.Application:
    """The backend's aiohttp application; `engine` must not be started yet."""
    errors = error_middleware(log, body_limit=settings.payload_limit)
    app = web.Application(client_max_size=settings.payload_limit, middlewares=[errors])
    app[SETTINGS_KEY] = settings
    app[ENGINE_KEY] = engine
    app[SLOTS_KEY] = RequestSlots(settings.max_concurrent_requests)
    app[HEALTH_KEY] = HealthCheck(engine)
    app[METRICS_KEY] = BackendMetrics(
        settings.max_input_tokens, settings.max_total_tokens, settings.batch_total_tokens
    )
    app.cleanup_ctx.append(_engine_lifetime)
    app.router.add_post("/generate", generate)
    app.router.add_post("/generate_stream", generate_stream)
    app.router.add_post("/", compat_generate)
    app.router.add_post("/invocations", invocations)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/tokenize", tokenize)
    app.router.add_post("/chat_tokenize", chat_tokenize)
    for path in ("/health", "/ping", "/"):
        app.router.add_get(path, health)
    app.router.add_get("/info", info)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/metrics", metrics)
    add_openapi_route(app, backend_openapi())
    return app


async def _engine_lifetime(app: web.Application) -> AsyncIterator[None]:
    settings, engine = app[SETTINGS_KEY], app[ENGINE_KEY]
    executor = ThreadPoolExecutor(settings.validation_workers, thread_name_prefix="tgis-validate")
    app[SERVICE_KEY] = GenerationService(
        engine, from_attributes(Limits, settings), app[SLOTS_KEY], executor
    )
    await engine.start()
    try:
        yield
    finally:
        await engine.stop()
        executor.shutdown(wait=False, cancel_futures=True)
