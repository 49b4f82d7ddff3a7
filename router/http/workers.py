"""Workers' status reports: `POST /worker_status/`.

A report carries the worker token (`Authorization: Bearer`, or Vast's `mtoken` field) when the
router has one. It names an endpoint the router knows (Vast's PyWorker names none: the router's
own); with `accept_unknown_workers` off, a worker the registry does not know yet is admitted
only if `ADMISSION` says so (403 otherwise). The registry applies the report; a change of state
is logged (`worker_state`), and a healthy worker may take requests that wait for one.
"""

from __future__ import annotations

import logging

from aiohttp import web

from protocol import WorkerStatusReport
from router.credentials import bearer_token, master_token, same_secret
from router.errors import EndpointNotFound, Forbidden, Unauthorized
from router.http.bodies import parse_model, read_json
from router.http.state import ADMISSION, CLOCK, REGISTRY, SERVICE, SETTINGS
from router.logs import event

__all__ = ["add_worker_routes"]

log = logging.getLogger(__name__)


def add_worker_routes(app: web.Application) -> None:
    app.router.add_post("/worker_status/", worker_status)


async def worker_status(request: web.Request) -> web.Response:
    app = request.app
    settings, service = app[SETTINGS], app[SERVICE]
    raw = await read_json(request)
    expected = settings.worker_token.get_secret_value()
    if expected:
        presented = bearer_token(request) or master_token(raw)  # Vast's PyWorker: `mtoken`
        if not same_secret(presented, expected):
            raise Unauthorized("status report without the right worker token")
    if isinstance(raw, dict) and "endpoint" not in raw:
        raw["endpoint"] = settings.endpoint  # Vast's PyWorker names none: the router's own
    report = parse_model(WorkerStatusReport, raw)
    if report.endpoint not in service.store.endpoints:
        raise EndpointNotFound(f"no endpoint named {report.endpoint!r}")
    registry = app[REGISTRY]
    before = registry.get(report.id)
    if before is None and not settings.accept_unknown_workers and not app[ADMISSION](report.id):
        event(log, "worker_refused", logging.WARNING, worker=report.id, url=report.url)
        raise Forbidden(f"worker {report.id!r} was not started by this router")
    previous = before.state if before else None
    now = app[CLOCK]()
    record = registry.apply_report(report, now)
    if record is None or record.state != previous:
        event(
            log,
            "worker_state",
            worker=report.id,
            endpoint=report.endpoint,
            url=report.url,
            state=report.state.value,
            max_perf=report.max_perf,
            error=report.error_msg or None,
        )
    if record is not None and record.healthy:
        service.capacity_changed(report.endpoint)
    return web.json_response({"accepted": True})
