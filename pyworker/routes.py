"""The PyWorker's routes: the relayed routes (`protocol.relay.RELAYED_PATHS`, each with a
ticket), the metadata ones (`METADATA_PATHS`, none: `/info` and `/v1/models` from the backend,
`/health` its own), and /ping, /metrics, /openapi.json (`pyworker.openapi`).

A relayed request goes through, in order: the body within its deadline (408) and size limit (413,
the app's), JSON (400), envelope (422), the ticket's checks that need no payload (401/403), the
payload and its workload (422), the ticket's cost and reqnum (403), readiness (503), expected
wait (429 with Retry-After), a FIFO in front of the backend's concurrency cap, then the relay, with
its workload counted in flight until the last byte is sent. Each refusal is a
`pyworker.errors` exception, answered as JSON by `httpedge.errors` and counted in the metrics
by its type (`count_error`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from httpedge.openapi import add_openapi_route
from protocol import ServiceError
from protocol.relay import METADATA_PATHS, RELAYED_PATHS
from pyworker.admission import refuse_if_overloaded
from pyworker.envelope import encode_payload, payload_of, read_json, ticket_of, workload
from pyworker.errors import NotReady, TicketRejected
from pyworker.load import RequestSlot
from pyworker.metrics import CONTENT_TYPE, WorkerMetrics
from pyworker.openapi import worker_openapi
from pyworker.reporter import UNSECURED_WARNING
from pyworker.state import GATE, LIFECYCLE, LOAD, METRICS, REFRESHER, RELAY, SETTINGS, VERIFIER
from pyworker.tickets.verifier import TicketFacts, TicketScheme

__all__ = ["add_routes", "count_error", "relay_request"]


def add_routes(app: web.Application) -> None:
    for path in RELAYED_PATHS:
        app.router.add_post(path, _relay_handler(path))
    for path in METADATA_PATHS:
        app.router.add_get(path, health if path == "/health" else _metadata_handler(path))
    app.router.add_get("/ping", ping)
    app.router.add_get("/metrics", metrics)
    add_openapi_route(app, worker_openapi())


def count_error(request: web.Request, error: ServiceError) -> None:
    """Every error answered, by type: a 4xx as a rejection, a 5xx as a relay error."""
    metrics = request.app[METRICS]
    counts = metrics.relay_errors if error.status >= 500 else metrics.rejections
    counts[error.error_type] += 1


def _relay_handler(path: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await relay_request(request, path)

    return handler


def _metadata_handler(path: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        """The backend's answer, with no ticket: the same metadata for everyone, and no work
        for the model (`protocol.relay.METADATA_PATHS`)."""
        return await request.app[RELAY].get(path)

    return handler


async def relay_request(request: web.Request, path: str) -> web.StreamResponse:
    app = request.app
    settings, lifecycle, load = app[SETTINGS], app[LIFECYCLE], app[LOAD]
    envelope, strict = read_json(await request.read())
    auth_data = ticket_of(envelope, settings.unsecured)
    facts = None if settings.unsecured else await _check_ticket(app, auth_data)
    payload = payload_of(envelope)
    tokens = workload(path, payload, lifecycle.max_new_tokens_default)
    if facts is not None:
        _admit_ticket(app, facts, tokens)
    if not lifecycle.serving:
        raise NotReady(f"worker is not serving (state: {lifecycle.state.value}); route again")
    max_perf = load.capacity.max_perf
    refuse_if_overloaded(load.in_flight_workload, max_perf, settings.max_queue_time_s)
    body = encode_payload(payload, strict)
    with load.slot(tokens) as slot:
        response = await _admit_and_relay(app, request, path, body, slot)
    _observe(app[METRICS], slot)
    return response


async def _admit_and_relay(
    app: web.Application, request: web.Request, path: str, body: bytes, slot: RequestSlot
) -> web.StreamResponse:
    gate, metrics, lifecycle = app[GATE], app[METRICS], app[LIFECYCLE]
    if gate.active >= gate.limit:
        lifecycle.set_busy(True)  # this request will queue
    await gate.acquire()
    slot.start_serving()
    try:
        metrics.queue_time.observe(time.perf_counter() - slot.started_at)
        return await app[RELAY].forward(request, path, body, slot)
    finally:
        gate.release()
        if not gate.waiting:
            lifecycle.set_busy(False)


def _observe(metrics: WorkerMetrics, slot: RequestSlot) -> None:
    if slot.first_byte_at is not None:
        metrics.time_to_first_byte.observe(slot.first_byte_at - slot.started_at)
    if slot.relay_error is not None:
        metrics.relay_errors[slot.relay_error] += 1


async def _check_ticket(app: web.Application, auth_data: Any) -> TicketFacts:
    """The ticket's checks that need no payload; a key unknown yet is fetched once."""
    verifier, rejections = app[VERIFIER], app[METRICS].ticket_rejections
    try:
        return verifier.check(auth_data)
    except TicketRejected as exc:
        if not _may_be_a_new_key(verifier.scheme, exc) or not await app[REFRESHER].refresh():
            rejections[exc.reason] += 1
            raise
        try:
            return verifier.check(auth_data)  # the router may have rotated its key
        except TicketRejected as again:
            rejections[again.reason] += 1
            raise


def _admit_ticket(app: web.Application, facts: TicketFacts, workload: int) -> None:
    """The ticket's cost against the payload's workload, then its reqnum spent."""
    try:
        app[VERIFIER].admit(facts, workload)
    except TicketRejected as exc:
        app[METRICS].ticket_rejections[exc.reason] += 1
        raise


def _may_be_a_new_key(scheme: TicketScheme, exc: TicketRejected) -> bool:
    """Vast tickets name no key: a bad signature may come from a key we have not seen yet."""
    return exc.reason == "unknown_key" or (scheme.uses_rsa and exc.reason == "bad_signature")


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


async def health(request: web.Request) -> web.Response:
    lifecycle = request.app[LIFECYCLE]
    body: dict[str, Any] = {
        "state": lifecycle.reported_state.value,
        "error_msg": lifecycle.error_msg,
    }
    if request.app[SETTINGS].unsecured:
        body["warnings"] = [UNSECURED_WARNING]
    return web.json_response(body, status=200 if lifecycle.serving else 503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
