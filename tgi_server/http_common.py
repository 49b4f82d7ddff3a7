"""What the HTTP handlers share: the application's keys, reading bodies, writing JSON."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from protocol.tgi import GenerateRequest
from tgi_server.admission import RequestSlots
from tgi_server.engine import Engine
from tgi_server.errors import PayloadTooLargeError
from tgi_server.health import HealthCheck
from tgi_server.metrics import BackendMetrics
from tgi_server.parsing import load_json_body, parse_generate_request
from tgi_server.service import GenerationService
from tgi_server.settings import BackendSettings
from tgi_server.wire import dumps

__all__ = [
    "ENGINE_KEY",
    "HEALTH_KEY",
    "KEEPALIVE_EVENT",
    "METRICS_KEY",
    "SERVICE_KEY",
    "SETTINGS_KEY",
    "SLOTS_KEY",
    "compute_type",
    "json_response",
    "read_generate_request",
    "read_json",
]

SETTINGS_KEY = web.AppKey("settings", BackendSettings)
ENGINE_KEY = web.AppKey("engine", Engine)
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


def compute_type(app: web.Application) -> str:
    configured = app[SETTINGS_KEY].compute_type
    if configured:
        return configured
    device_type = app[ENGINE_KEY].model.device_type
    return "gpu+optimized" if device_type == "cuda" else device_type


def json_response(
    body: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=dumps(body).encode("utf-8"),
        status=status,
        content_type="application/json",
        headers=headers,
    )
