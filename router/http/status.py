"""What the router shows of itself: `/status`, `/ui` and `/metrics`.

GET /status    endpoints and their workers, as JSON (`protocol.RouterStatus`, no secrets)
GET /ui        the same as a small read-only HTML page (`router.http.status_page`)
GET /metrics   Prometheus metrics (`router.http.metrics`)

Each first lets the registry expire the tickets whose time is up, so what it shows is current.
"""

from __future__ import annotations

from aiohttp import web

from protocol import RouterStatus
from router.http.metrics import CONTENT_TYPE
from router.http.state import CLOCK, METRICS, REGISTRY, SERVICE
from router.http.status_page import render_status_page
from router.routing.status import router_status

__all__ = ["add_status_routes", "status_view"]


def add_status_routes(app: web.Application) -> None:
    app.router.add_get("/status", status)
    app.router.add_get("/ui", status_page)
    app.router.add_get("/metrics", metrics)


def status_view(app: web.Application) -> RouterStatus:
    """The `/status` body: each endpoint with its state, limit, waiting requests and workers."""
    now = app[CLOCK]()
    app[REGISTRY].expire_pending(now)
    return router_status(app[SERVICE], now)


async def status(request: web.Request) -> web.Response:
    return web.json_response(status_view(request.app).model_dump())


async def status_page(request: web.Request) -> web.Response:
    return web.Response(text=render_status_page(status_view(request.app)), content_type="text/html")


async def metrics(request: web.Request) -> web.Response:
    request.app[REGISTRY].expire_pending(request.app[CLOCK]())
    body = request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
