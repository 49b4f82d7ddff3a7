"""The backend application's state, one typed `web.AppKey` each.

`app.create_app` sets every key but `SERVICE_KEY`, which the engine's lifetime sets when the
application starts (the service needs the validation threads it owns). Handlers read them from
`request.app`.
"""

from __future__ import annotations

from aiohttp import web

from tgi_server.engine.base import ModelEngine
from tgi_server.health import HealthCheck
from tgi_server.metrics import BackendMetrics
from tgi_server.request_slots import RequestSlots
from tgi_server.service import GenerationService
from tgi_server.settings import BackendSettings

__all__ = ["ENGINE_KEY", "HEALTH_KEY", "METRICS_KEY", "SERVICE_KEY", "SETTINGS_KEY", "SLOTS_KEY"]

SETTINGS_KEY = web.AppKey("settings", BackendSettings)
ENGINE_KEY = web.AppKey("engine", ModelEngine)
SLOTS_KEY = web.AppKey("slots", RequestSlots)
HEALTH_KEY = web.AppKey("health", HealthCheck)
SERVICE_KEY = web.AppKey("service", GenerationService)
METRICS_KEY = web.AppKey("metrics", BackendMetrics)
