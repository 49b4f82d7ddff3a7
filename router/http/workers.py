"""Workers' status reports: `POST /worker_status/`, and their registration.

A report carries one secret (`Authorization: Bearer`, or Vast's `mtoken` field), which says who
speaks (`router.identity.speaker`): a worker's credential (it may report only as itself, at the
url and on the endpoint it registered with), a join token (the worker registers: the answer is
`{"accepted": true, "credential": "tgis-worker-..."}`, the credential it reports with from then
on), or, with `allow_anonymous_workers` only, the shared worker token (or none).

A report names an endpoint the router knows (Vast's PyWorker names none: the router's own) and
a worker url (`router.routing.worker_url`, with the endpoint's `allow_private_workers`). A worker
new to the registry is refused (403) when its endpoint has `max_workers_per_endpoint` already,
or, with `accept_unknown_workers` off, when `ADMISSION` does not know it. The registry applies
the report; a change of state is logged (`worker_state`), and a healthy worker may take
requests that wait for one. A `stopped` worker leaves the registry, and its credential with it.
"""

from __future__ import annotations

import logging

from aiohttp import web

from protocol import WorkerState, WorkerStatusReport
from router.credentials import bearer_token, master_token
from router.errors import EndpointNotFound, Forbidden, InvalidRequest
from router.http.bodies import parse_model, read_json
from router.http.state import (
    ADMISSION,
    CLOCK,
    IDENTITIES,
    REGISTRY,
    SERVICE,
    SETTINGS,
    STATE_SYNC,
)
from router.identity.speaker import AnonymousWorkers, check_report, identify
from router.logs import event
from router.routing.worker_url import WorkerUrlError, check_worker_url

__all__ = ["add_worker_routes"]

log = logging.getLogger(__name__)


def add_worker_routes(app: web.Application) -> None:
    app.router.add_post("/worker_status/", worker_status)


async def worker_status(request: web.Request) -> web.Response:
    app = request.app
    settings, service, identities = app[SETTINGS], app[SERVICE], app[IDENTITIES]
    raw = await read_json(request)
    now = app[CLOCK]()
    presented = bearer_token(request) or master_token(raw)  # Vast's PyWorker: `mtoken`
    speaker = identify(identities.book, presented, AnonymousWorkers.of(settings), now)
    if isinstance(raw, dict) and "endpoint" not in raw:
        raw["endpoint"] = settings.endpoint  # Vast's PyWorker names none: the router's own
    report = parse_model(WorkerStatusReport, raw)
    check_report(
        speaker, identities.book, worker_id=report.id, endpoint=report.endpoint, url=report.url
    )
    endpoint = service.store.endpoints.get(report.endpoint)
    if endpoint is None:
        raise EndpointNotFound(f"no endpoint named {report.endpoint!r}")
    try:
        check_worker_url(report.url, allow_private=endpoint.allow_private_workers)
    except WorkerUrlError as exc:
        raise InvalidRequest(str(exc)) from None
    registry = app[REGISTRY]
    before = registry.get(report.id)
    if before is None and report.state is not WorkerState.STOPPED:
        _admit_new(app, report)
    credential = None
    if speaker.join is not None:
        max_workers = settings.max_workers_per_endpoint
        identities.book.check_register(speaker.join, worker_id=report.id, max_workers=max_workers)
        registry.remove(report.id)  # a token bound to this id: its provider started it again
        worker, credential = identities.book.register(
            speaker.join,
            worker_id=report.id,
            url=report.url,
            max_workers=max_workers,
        )
        await identities.save()  # before the credential goes out: a restart keeps it
        event(log, "worker_registered", worker=worker.worker_id, endpoint=worker.endpoint)
        before = None
    previous = before.state if before else None
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
    sync = app.get(STATE_SYNC)
    if sync is not None:  # routers on shared state: the others hear of it at the next flush
        await sync.report_taken(report, now)
    if record is not None and record.healthy:
        service.capacity_changed(report.endpoint)
    if credential is not None:
        return web.json_response({"accepted": True, "credential": credential})
    return web.json_response({"accepted": True})


def _admit_new(app: web.Application, report: WorkerStatusReport) -> None:
    """A worker new to the registry: Forbidden when its endpoint is full, or (with
    `accept_unknown_workers` off) when this router did not start it."""
    settings, registry = app[SETTINGS], app[REGISTRY]
    if registry.count(report.endpoint) >= settings.max_workers_per_endpoint:
        event(log, "worker_refused", logging.WARNING, worker=report.id, reason="endpoint_full")
        raise Forbidden(
            f"endpoint {report.endpoint!r} has {settings.max_workers_per_endpoint} workers, its "
            "most (TGIS_MAX_WORKERS_PER_ENDPOINT): stop one first"
        )
    if not settings.accept_unknown_workers and not app[ADMISSION](report.id):
        event(log, "worker_refused", logging.WARNING, worker=report.id, url=report.url)
        raise Forbidden(f"worker {report.id!r} was not started by this router")
