"""The HTTP layer: TGI's routes on aiohttp, translating between the wire and the service.

Routes: `POST /generate`, `POST /generate_stream`, `POST /` (compat: `stream` picks the form;
`return_full_text` defaults to true), `POST /invocations` (SageMaker: a generate, chat or
completions body), `POST /v1/chat/completions`, `POST /v1/completions`, `POST /tokenize`,
`GET /health` (also `/ping` and `GET /`), `GET /info`, `GET /v1/models`, `GET /metrics`.
Every error a client can cause is a 4xx with TGI's JSON body; a stream, once its body has
parsed, always answers 200 and reports failures as one in-stream `{"error", "error_type"}`
event. The engine starts and stops with the application (`cleanup_ctx`), after in-flight
requests have ended.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from aiohttp import web

from protocol.sse import encode_json_event
from protocol.tgi import GenerateRequest, Info
from protocol.version import VERSION
from tgi_server.engine.base import ModelEngine
from tgi_server.errors import (
    BackendError,
    InvalidBodyError,
    UnhealthyError,
)
from tgi_server.health import HealthCheck
from tgi_server.http.bodies import (
    generate_request_from,
    stream_flag,
)
from tgi_server.http.responses import (
    ENGINE_KEY,
    HEALTH_KEY,
    METRICS_KEY,
    SERVICE_KEY,
    SETTINGS_KEY,
    SLOTS_KEY,
    compute_type,
    json_response,
    read_generate_request,
    read_json,
    run_generate,
)
from tgi_server.http.streaming import stream_response
from tgi_server.http.wire import (
    generate_body,
    generate_headers,
    stream_event_bytes,
    stream_headers,
)
from tgi_server.metrics import BackendMetrics
from tgi_server.openai.routes import (
    chat_completions,
    chat_document,
    completion_document,
    completions,
)
from tgi_server.request_slots import RequestSlots
from tgi_server.service import GenerationService
from tgi_server.settings import BackendSettings
from tgi_server.validation import Limits

__all__ = [
    "ENGINE_KEY",
    "METRICS_KEY",
    "SERVICE_KEY",
    "SETTINGS_KEY",
    "SLOTS_KEY",
    "create_app",
]

log = logging.getLogger(__name__)

ROUTER_NAME = "tgi-serverless"
"""`/info` `router` (TGI sends "text-generation-router"; see docs/backend.md)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(settings: BackendSettings, engine: ModelEngine) -> web.Application:
    """The backend's aiohttp application; `engine` must not be started yet."""
    app = web.Application(client_max_size=settings.payload_limit, middlewares=[_errors_as_json])
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
    for path in ("/health", "/ping", "/"):
        app.router.add_get(path, health)
    app.router.add_get("/info", info)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/metrics", metrics)
    return app


async def _engine_lifetime(app: web.Application) -> AsyncIterator[None]:
    settings, engine = app[SETTINGS_KEY], app[ENGINE_KEY]
    executor = ThreadPoolExecutor(settings.validation_workers, thread_name_prefix="tgis-validate")
    app[SERVICE_KEY] = GenerationService(
        engine, Limits.from_settings(settings), app[SLOTS_KEY], executor
    )
    await engine.start()
    try:
        yield
    finally:
        await engine.stop()
        executor.shutdown(wait=False, cancel_futures=True)


async def generate(request: web.Request) -> web.Response:
    received_at = time.monotonic()
    body = await read_generate_request(request)
    return await _generate_response(request, body, received_at, as_list=False)


async def generate_stream(request: web.Request) -> web.StreamResponse:
    received_at = time.monotonic()
    body = await read_generate_request(request)
    return await _stream_response(request, body, received_at)


async def compat_generate(request: web.Request) -> web.StreamResponse:
    """`POST /`: `/generate` (as a one-item list) or, with `stream`, `/generate_stream`."""
    return await _compat_document(request, await read_json(request), time.monotonic())


async def invocations(request: web.Request) -> web.StreamResponse:
    """SageMaker's route: a compat body (`inputs`), a chat (`messages`) or completions
    (`prompt`), tried in that order."""
    received_at = time.monotonic()
    document = await read_json(request)
    if isinstance(document, dict) and "inputs" in document:
        return await _compat_document(request, document, received_at)
    if isinstance(document, dict) and "messages" in document:
        return await chat_document(request, document, received_at)
    if isinstance(document, dict) and "prompt" in document:
        return await completion_document(request, document, received_at)
    raise InvalidBodyError("data did not match any variant of untagged enum SagemakerRequest")


async def _compat_document(
    request: web.Request, document: Any, received_at: float
) -> web.StreamResponse:
    body = generate_request_from(document)
    if body.parameters.return_full_text is None:
        full_text = request.app[SETTINGS_KEY].compat_return_full_text
        parameters = body.parameters.model_copy(update={"return_full_text": full_text})
        body = body.model_copy(update={"parameters": parameters})
    if stream_flag(document):
        return await _stream_response(request, body, received_at)
    return await _generate_response(request, body, received_at, as_list=True)


async def tokenize(request: web.Request) -> web.Response:
    body = await read_generate_request(request)
    spans = await request.app[SERVICE_KEY].spans(body.inputs)
    truncate = body.parameters.truncate
    if truncate is not None and len(spans) > truncate:
        spans = spans[len(spans) - truncate :]
    tokens = [
        {"id": span.id, "text": span.text, "start": span.start, "stop": span.stop} for span in spans
    ]
    return json_response(tokens)


async def models(request: web.Request) -> web.Response:
    model_id = request.app[ENGINE_KEY].model.model_id
    entry = {"id": model_id, "object": "model", "created": 0, "owned_by": model_id}
    return json_response({"object": "list", "data": [entry]})


async def metrics(request: web.Request) -> web.Response:
    text = request.app[METRICS_KEY].render(request.app[ENGINE_KEY].stats)
    return web.Response(body=text, content_type="text/plain", charset="utf-8")


async def _generate_response(
    request: web.Request, body: GenerateRequest, received_at: float, *, as_list: bool
) -> web.Response:
    result = await run_generate(request.app, body, received_at)
    headers = generate_headers(result, compute_type(request.app))
    payload = generate_body(result)
    return json_response([payload] if as_list else payload, headers=headers)


async def _stream_response(
    request: web.Request, body: GenerateRequest, received_at: float
) -> web.StreamResponse:
    encode = partial(stream_event_bytes, details=body.parameters.details)
    return await stream_response(
        request,
        stream_headers(compute_type(request.app), body.inputs),
        [(body, encode)],
        received_at,
        error_event=lambda exc: encode_json_event(exc.body()),
    )


async def health(request: web.Request) -> web.Response:
    """200 with an empty body; after a failed generation, only once one token generates."""
    if not await request.app[HEALTH_KEY].healthy():
        raise UnhealthyError()
    return web.Response(status=200)


async def info(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    body = Info(
        model_id=request.app[ENGINE_KEY].model.model_id,
        model_sha=None,
        model_pipeline_tag="text-generation",
        max_concurrent_requests=settings.max_concurrent_requests,
        max_best_of=settings.max_best_of,
        max_stop_sequences=settings.max_stop_sequences,
        max_input_tokens=settings.max_input_tokens,
        max_total_tokens=settings.max_total_tokens,
        validation_workers=settings.validation_workers,
        max_client_batch_size=settings.max_client_batch_size,
        router=ROUTER_NAME,
        version=VERSION,
        sha=None,
        docker_label=None,
    )
    return json_response(body.model_dump())


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BackendError as exc:
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, exc.message)
        return json_response(exc.body(), status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        body = {"error": exc.reason, "error_type": exc.reason.lower().replace(" ", "_")}
        return json_response(body, status=exc.status, headers=headers)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        body = {"error": "Internal server error", "error_type": "internal"}
        return json_response(body, status=500)
