"""What the router shows of itself: `/status`, `/ui` and `/metrics`.

GET /status    endpoints and their workers, as JSON (no secrets)
GET /ui        the same as a small read-only HTML page (`router.http.status_page`)
GET /metrics   Prometheus metrics (`router.http.metrics`)

Each first lets the registry expire the tickets whose time is up, so what it shows is current.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from router.http.metrics import CONTENT_TYPE
from router.http.state import CLOCK, METRICS, REGISTRY, SERVICE
from router.http.status_page import render_status_page
from router.routing.registry import WorkerRecord, WorkerRegistry

__all__ = ["add_status_routes", "status_view"]


def add_status_routes(app: web.Application) -> None:
    app.router.add_get("/status", status)
    app.router.add_get("/ui", status_page)
    app.router.add_get("/metrics", metrics)


def status_view(app: web.Application) -> dict[str, Any]:
    """The `/status` body: each endpoint with its state, limit, waiting requests and workers."""
    now, registry, service = app[CLOCK](), app[REGISTRY], app[SERVICE]
    registry.expire_pending(now)
    endpoints = []
    for endpoint in service.store.endpoints.values():
        workers = [
            _worker_view(registry, worker, now)
            for worker in registry
            if worker.endpoint == endpoint.name
        ]
        endpoints.append(
            {
                "name": endpoint.name,
                "endpoint_state": endpoint.endpoint_state.value,
                "max_workers": endpoint.params.max_workers,
                "waiting": service.queue.waiting_for(endpoint.name),
                "workers": workers,
            }
        )
    return {"endpoints": endpoints, "waiting": service.queue.waiting}


async def status(request: web.Request) -> web.Response:
    return web.json_response(status_view(request.app))


async def status_page(request: web.Request) -> web.Response:
    return web.Response(text=render_status_page(status_view(request.app)), content_type="text/html")


async def metrics(request: web.Request) -> web.Response:
    request.app[REGISTRY].expire_pending(request.app[CLOCK]())
    body = request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def _worker_view(registry: WorkerRegistry, worker: WorkerRecord, now: float) -> dict[str, Any]:
    return {
        "id": worker.id,
        "url": worker.url,
        "state": registry.state_of(worker, now),
        "max_perf": worker.max_perf,
        "expected_load": worker.expected_load,
        "pending_cost": worker.pending_workload,
        "expected_wait_s": worker.expected_wait_s,
        "error_msg": worker.error_msg,
        "last_report_age_s": round(now - worker.last_report_at, 3),
    }
