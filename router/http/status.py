"""What the router shows of itself: `/status`, `/ui` and `/metrics`.

GET /status    endpoints and their workers, as JSON (`protocol.RouterStatus`, no secrets)
GET /ui        the same as a small read-only HTML page (`router.http.status_page`)
GET /metrics   Prometheus metrics (`router.http.metrics`)

`/status` and `/ui` name every worker and its URL: they want the admin key unless the router
runs with `public_status` (`router.http.access`). `/metrics` is open, on the main port; with
`metrics_address` set it is served there instead, by a second site (`metrics_site`), and the
main port has none. Each first lets the registry expire the tickets whose time is up, so what
it shows is current.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from httpedge.connections import GuardedSite, connection_runner
from httpedge.errors import error_middleware
from protocol import RouterStatus
from router.http.access import Handler, status_reader
from router.http.metrics import CONTENT_TYPE
from router.http.state import CLOCK, METRICS, REGISTRY, SERVICE, SETTINGS
from router.http.status_page import render_status_page
from router.routing.status import router_status

__all__ = ["add_status_routes", "metrics_site", "status_view"]

log = logging.getLogger(__name__)


def add_status_routes(app: web.Application) -> None:
    """/status and /ui; /metrics too unless the settings put it on an address of its own."""
    app.router.add_get("/status", status_reader(status))
    app.router.add_get("/ui", status_reader(status_page))
    if app[SETTINGS].metrics_address is None:
        app.router.add_get("/metrics", _metrics_handler(app))
    else:
        app.cleanup_ctx.append(metrics_site)


def status_view(app: web.Application) -> RouterStatus:
    """The `/status` body: each endpoint with its state, limit, waiting requests and workers."""
    now = app[CLOCK]()
    app[REGISTRY].expire_pending(now)
    return router_status(app[SERVICE], now)


async def status(request: web.Request) -> web.Response:
    return web.json_response(status_view(request.app).model_dump())


async def status_page(request: web.Request) -> web.Response:
    return web.Response(text=render_status_page(status_view(request.app)), content_type="text/html")


async def metrics_site(app: web.Application) -> AsyncIterator[None]:
    """While `app` runs: a plain-HTTP site on its `metrics_address` that serves only its
    /metrics, behind the same connection guard as the main port (header deadline, idle and
    connection limits). A start-up step, after the one that makes the metrics."""
    address = app[SETTINGS].metrics_host_port
    assert address is not None, "metrics_site runs only with a metrics_address"
    errors = error_middleware(log, body_limit=app[SETTINGS].max_body_bytes)
    metrics_app = web.Application(middlewares=[errors])  # a 404 or 405 in JSON, as elsewhere
    metrics_app.router.add_get("/metrics", _metrics_handler(app))
    limits = app[SETTINGS].connection_limits  # the main port's: slow or idle scrapers too
    runner = connection_runner(metrics_app, limits)
    await runner.setup()
    try:
        await GuardedSite(runner, limits, *address).start()
        yield
    finally:
        await runner.cleanup()


def _metrics_handler(app: web.Application) -> Handler:
    """GET /metrics for the router `app`, whichever application serves it."""

    async def metrics(request: web.Request) -> web.Response:
        app[REGISTRY].expire_pending(app[CLOCK]())
        body = app[METRICS].exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    return metrics
