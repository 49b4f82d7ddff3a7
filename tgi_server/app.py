"""The HTTP layer: TGI's routes on aiohttp, translating between the wire and the service.

Routes: `POST /generate`, `POST /generate_stream`, `GET /health`, `GET /info`. Every error a
client can cause is a 4xx with TGI's JSON body; a stream, once its body has parsed, always
answers 200 and reports failures as one in-stream `{"error", "error_type"}` event. The engine
starts and stops with the application (`cleanup_ctx`), after in-flight requests have ended.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from protocol.sse import encode_json_event
from protocol.tgi import GenerateRequest, Info
from protocol.version import VERSION
from tgi_server.admission import RequestSlots
from tgi_server.engine import Engine
from tgi_server.errors import (
    BackendError,
    GenerationError,
    PayloadTooLargeError,
    UnhealthyError,
)
from tgi_server.parsing import parse_generate_request
from tgi_server.service import GenerationService
from tgi_server.settings import BackendSettings
from tgi_server.validation import Limits
from tgi_server.wire import (
    dumps,
    generate_body,
    generate_headers,
    stream_event_body,
    stream_headers,
)

__all__ = ["ENGINE_KEY", "SERVICE_KEY", "SETTINGS_KEY", "SLOTS_KEY", "create_app"]

log = logging.getLogger(__name__)

SETTINGS_KEY = web.AppKey("settings", BackendSettings)
ENGINE_KEY = web.AppKey("engine", Engine)
SLOTS_KEY = web.AppKey("slots", RequestSlots)
SERVICE_KEY = web.AppKey("service", GenerationService)

KEEPALIVE_EVENT = b":\n\n"
ROUTER_NAME = "tgi-serverless"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(settings: BackendSettings, engine: Engine) -> web.Application:
    """The backend's aiohttp application; `engine` must not be started yet."""
    app = web.Application(client_max_size=settings.payload_limit, middlewares=[_errors_as_json])
    app[SETTINGS_KEY] = settings
    app[ENGINE_KEY] = engine
    app[SLOTS_KEY] = RequestSlots(settings.max_concurrent_requests)
    app.cleanup_ctx.append(_engine_lifetime)
    app.router.add_post("/generate", generate)
    app.router.add_post("/generate_stream", generate_stream)
    app.router.add_get("/health", health)
    app.router.add_get("/info", info)
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
    body = await _read_generate_request(request)
    result = await request.app[SERVICE_KEY].generate(body, received_at)
    headers = generate_headers(result, _compute_type(request.app))
    return _json_response(generate_body(result), headers=headers)


async def generate_stream(request: web.Request) -> web.StreamResponse:
    body = await _read_generate_request(request)
    response = web.StreamResponse(headers=stream_headers(_compute_type(request.app), body.inputs))
    try:
        await response.prepare(request)
        await _write_events(response, request.app[SERVICE_KEY], body)
        await response.write_eof()
    except ConnectionResetError:
        log.debug("client went away during a stream")
    return response


async def health(request: web.Request) -> web.Response:
    if not request.app[ENGINE_KEY].running:
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
    return _json_response(body.model_dump())


async def _write_events(
    response: web.StreamResponse, service: GenerationService, body: GenerateRequest
) -> None:
    details = body.parameters.details
    try:
        async with contextlib.aclosing(service.stream(body)) as events:
            async for event in events:
                if event is None:
                    await response.write(KEEPALIVE_EVENT)
                else:
                    await response.write(
                        encode_json_event(stream_event_body(event, details=details))
                    )
    except BackendError as exc:
        await response.write(encode_json_event(exc.body()))
    except ConnectionResetError:
        raise
    except Exception as exc:
        log.exception("a stream failed")
        await response.write(encode_json_event(GenerationError(f"Server error: {exc}").body()))


async def _read_generate_request(request: web.Request) -> GenerateRequest:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLargeError() from exc
    return parse_generate_request(request.headers.get("Content-Type", ""), raw)


def _compute_type(app: web.Application) -> str:
    configured = app[SETTINGS_KEY].compute_type
    if configured:
        return configured
    device_type = app[ENGINE_KEY].model.device_type
    return "gpu+optimized" if device_type == "cuda" else device_type


def _json_response(
    body: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=dumps(body).encode("utf-8"),
        status=status,
        content_type="application/json",
        headers=headers,
    )


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BackendError as exc:
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, exc.message)
        return _json_response(exc.body(), status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        body = {"error": exc.reason, "error_type": exc.reason.lower().replace(" ", "_")}
        return _json_response(body, status=exc.status, headers=headers)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        body = {"error": "Internal server error", "error_type": "internal"}
        return _json_response(body, status=500)
