"""What the HTTP handlers share: the application's keys, reading bodies, writing JSON."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from protocol.tgi import GenerateRequest
from tgi_server.engine.base import ModelEngine
from tgi_server.errors import BackendError, GenerationError, PayloadTooLargeError
from tgi_server.generation.events import Completion
from tgi_server.health import HealthCheck
from tgi_server.http.bodies import load_json_body, parse_generate_request
from tgi_server.http.wire import dumps
from tgi_server.metrics import BackendMetrics
from tgi_server.request_slots import RequestSlots
from tgi_server.service import GenerateResult, GenerationService
from tgi_server.settings import BackendSettings

if TYPE_CHECKING:
    from tgi_server.http.stream_sink import SocketStreamSink

__all__ = [
    "DROPPED",
    "ENGINE_KEY",
    "HEALTH_KEY",
    "KEEPALIVE_EVENT",
    "METRICS_KEY",
    "SERVICE_KEY",
    "SETTINGS_KEY",
    "SLOTS_KEY",
    "compute_type",
    "derived_compute_type",
    "json_response",
    "read_generate_request",
    "read_json",
    "run_generate",
    "run_stream",
]

SETTINGS_KEY = web.AppKey("settings", BackendSettings)
ENGINE_KEY = web.AppKey("engine", ModelEngine)
SLOTS_KEY = web.AppKey("slots", RequestSlots)
HEALTH_KEY = web.AppKey("health", HealthCheck)
SERVICE_KEY = web.AppKey("service", GenerationService)
METRICS_KEY = web.AppKey("metrics", BackendMetrics)

KEEPALIVE_EVENT = b":\n\n"


async def read_generate_request(request: web.Request) -> GenerateRequest:
    return parse_generate_request(request.headers.get("Content-Type", ""), await _read(request))


async def read_json(request: web.Request) -> Any:
    return load_json_body(request.headers.get("Content-Type", ""), await _read(request))


async def _read(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLargeError() from exc


DROPPED = "dropped"
"""`tgi_request_failure`'s `err` for a request whose client went away."""

log = logging.getLogger(__name__)


async def run_generate(
    app: web.Application,
    body: GenerateRequest,
    received_at: float,
    *,
    add_special_tokens: bool = True,
) -> GenerateResult:
    """Run one non-streamed request and record its outcome exactly once, as `run_stream` does
    for a stream: served, failed with its error type, or dropped when the handler was cancelled
    (its client went away). Any other error is raised as a GenerationError."""
    metrics, service = app[METRICS_KEY], app[SERVICE_KEY]
    metrics.received()
    try:
        result = await service.generate(body, received_at, add_special_tokens=add_special_tokens)
    except BackendError as exc:
        metrics.failed(exc.error_type)
        raise
    except asyncio.CancelledError:
        metrics.failed(DROPPED)
        raise
    except Exception as exc:
        log.exception("a request failed")
        error = GenerationError(f"Server error: {exc}")
        metrics.failed(error.error_type)
        raise error from exc
    metrics.served(result.best.completion, received_at, result.validated_at)
    return result


async def run_stream(
    app: web.Application,
    body: GenerateRequest,
    sink: SocketStreamSink,
    received_at: float,
    *,
    add_special_tokens: bool = True,
) -> Completion:
    """Run one streamed request into `sink` and record its outcome exactly once: served, failed
    with its error type, or dropped when the client went away (ConnectionResetError or the
    handler's cancellation, re-raised). Any other error is raised as a GenerationError, for the
    route to send as its in-stream error event."""
    metrics, service = app[METRICS_KEY], app[SERVICE_KEY]
    metrics.received()
    try:
        streamed = service.streaming_into(body, sink, add_special_tokens=add_special_tokens)
        async with streamed as validated_at:
            completion = await sink.wait(service.keepalive_s)
    except BackendError as exc:
        metrics.failed(exc.error_type)
        raise
    except (ConnectionResetError, asyncio.CancelledError):
        metrics.failed(DROPPED)
        raise
    except Exception as exc:
        log.exception("a stream failed")
        error = GenerationError(f"Server error: {exc}")
        metrics.failed(error.error_type)
        raise error from exc
    metrics.served(completion, received_at, validated_at)
    return completion


def compute_type(app: web.Application) -> str:
    configured = app[SETTINGS_KEY].compute_type
    if configured:
        return configured
    model = app[ENGINE_KEY].model
    return derived_compute_type(model.device_type, model.device_name)


def derived_compute_type(device_type: str, device_name: str | None) -> str:
    """`x-compute-type` as TGI's launcher sets it: `<shards>-<gpu name, lowercased, spaces as
    dashes>` on a named GPU (one shard here), its router's default `gpu+optimized` on an
    unnamed one, and the torch device type ("cpu") where TGI would not run at all."""
    if device_type != "cuda":
        return device_type
    if not device_name:
        return "gpu+optimized"
    return "1-" + device_name.lower().replace(" ", "-")


def json_response(
    body: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=dumps(body).encode("utf-8"),
        status=status,
        content_type="application/json",
        headers=headers,
    )
