"""The PyWorker's aiohttp application: ticket checks at the door, then admission, then relay.

    POST /generate, /generate_stream    {"auth_data": <ticket>, "payload": <TGI body>}
    GET  /ping, /health                  liveness, and whether the backend is serving
    GET  /metrics                        Prometheus text format

A request goes through, in order: size limit (413), JSON (400), envelope (422), workload of
the payload (422), ticket checks (401/403), readiness (503), expected wait (429 with
Retry-After), a FIFO in front of the backend's concurrency cap, then the relay, with its
workload counted in flight until the last byte is sent. Each refusal is a `pyworker.errors`
exception, answered as JSON by `httpedge.errors` and counted in the metrics by its type.

On shutdown (SIGTERM) the worker drains: it refuses new requests (503), reports `draining`,
lets in-flight requests finish for up to `drain_grace_s`, then reports `stopped`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from httpedge.errors import error_middleware
from protocol import Info, ServiceError, WorkerState, workload_for_path
from protocol.relay import RELAYED_PATHS
from protocol.workload import WorkloadError
from pyworker.admission import FifoGate, refuse_if_overloaded
from pyworker.backend.model_log import LogFollower
from pyworker.backend.probe import BackendProbe
from pyworker.backend.supervisor import Supervisor
from pyworker.errors import BadRequest, InvalidPayload, NotReady, TicketRejected
from pyworker.lifecycle import Lifecycle
from pyworker.load import LoadTracker, RequestSlot
from pyworker.metrics import CONTENT_TYPE, WorkerMetrics
from pyworker.relay import Relay
from pyworker.reporter import UNSECURED_WARNING, StatusReporter, build_report
from pyworker.settings import WorkerSettings
from pyworker.tickets.keys import KeyRefresher, fetch_keys, fetch_keys_until_success
from pyworker.tickets.verifier import TicketScheme, TicketVerifier

__all__ = ["create_app"]

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", WorkerSettings)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
LOAD = web.AppKey("load", LoadTracker)
VERIFIER = web.AppKey("verifier", TicketVerifier)
REFRESHER = web.AppKey("refresher", KeyRefresher)
GATE = web.AppKey("gate", FifoGate)
METRICS = web.AppKey("metrics", WorkerMetrics)
SESSION = web.AppKey("session", aiohttp.ClientSession)
RELAY = web.AppKey("relay", Relay)
REPORTER = web.AppKey("reporter", StatusReporter)

INITIAL_CONCURRENCY = 128  # until the backend's /info says otherwise (TGI's default)
# Every digit to "0", everything else to " ": 19 zeros in a row may be an integer orjson
# cannot hold exactly. (A translation and a substring search: ten times a regex's speed.)
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_DIGIT_RUN = b"0" * 19


def create_app(
    settings: WorkerSettings, *, clock: Callable[[], float] = time.time
) -> web.Application:
    errors = error_middleware(log, body_limit=settings.max_body_bytes, on_error=_count_error)
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[errors])
    app[SETTINGS] = settings
    app[LIFECYCLE] = Lifecycle(clock=clock)
    app[LOAD] = LoadTracker(clock=clock)
    app[GATE] = FifoGate(settings.max_concurrency or INITIAL_CONCURRENCY)
    app[METRICS] = WorkerMetrics(app[LOAD], app[LIFECYCLE], lambda: app[GATE])
    app[VERIFIER] = TicketVerifier(
        settings.advertised_url,
        {},
        clock=clock,
        scheme=settings.ticket_scheme,
        clock_skew_s=settings.clock_skew_s,
        replay_window=settings.replay_window,
    )
    app.cleanup_ctx.append(_client_session)
    app.cleanup_ctx.append(_background_tasks)
    app.on_shutdown.append(_drain)
    for path in RELAYED_PATHS:
        app.router.add_post(path, _relay_handler(path))
    app.router.add_get("/ping", ping)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    return app


def _count_error(request: web.Request, error: ServiceError) -> None:
    """Every error answered, by type: a 4xx as a rejection, a 5xx as a relay error."""
    metrics = request.app[METRICS]
    counts = metrics.relay_errors if error.status >= 500 else metrics.rejections
    counts[error.error_type] += 1


def _relay_handler(path: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await relay_request(request, path)

    return handler


async def relay_request(request: web.Request, path: str) -> web.StreamResponse:
    app = request.app
    settings, lifecycle, load = app[SETTINGS], app[LIFECYCLE], app[LOAD]
    envelope, strict = _read_json(await request.read())
    auth_data, payload = _parse_envelope(envelope, settings.unsecured)
    workload = _workload(path, payload, lifecycle.max_new_tokens_default)
    if not settings.unsecured:
        await _verify_ticket(app, auth_data, workload)
    if not lifecycle.serving:
        raise NotReady(f"worker is not serving (state: {lifecycle.state.value}); route again")
    refuse_if_overloaded(load.in_flight_workload, lifecycle.max_perf, settings.max_queue_time_s)
    body = _encode_payload(payload, strict)
    with load.slot(workload) as slot:
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


def _read_json(raw: bytes) -> tuple[Any, bool]:
    """The parsed body, and whether orjson (strict RFC 8259, 4x faster) read it.

    orjson reads an integer beyond 64 bits as a float, so a body with a run of 19 or more
    digits goes to Python's `json`, which keeps it exact; so does what only `json` accepts
    (NaN, lone surrogates, UTF-16). Either way the values are those `json.loads` would give;
    what neither reads (nested too deep for both included) is a BadRequest.
    """
    if _LONG_DIGIT_RUN not in raw.translate(_DIGITS_AS_ZEROS):
        try:
            return orjson.loads(raw), True
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(raw), False
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


def _encode_payload(payload: dict[str, Any], strict: bool) -> bytes:
    """The payload as compact JSON for the backend; orjson's when orjson could read it.

    orjson would write a NaN as null, so a body only `json` could read goes back through it;
    so does one nested deeper than orjson writes (254 levels). `json` writes it ASCII-escaped:
    a lone UTF-16 surrogate (which `json` reads from a `\\ud800` escape) has no UTF-8 form, so
    it can only go on as the escape it came as. One nested deeper than `json` writes is a
    BadRequest.
    """
    if strict:
        try:
            return orjson.dumps(payload)
        except orjson.JSONEncodeError:
            pass
    try:
        return json.dumps(payload, separators=(",", ":")).encode("ascii")
    except RecursionError:
        raise BadRequest("the payload is nested too deeply to relay: flatten it") from None


def _parse_envelope(body: Any, unsecured: bool) -> tuple[Any, dict[str, Any]]:
    if not isinstance(body, dict):
        raise InvalidPayload('body must be a JSON object {"auth_data": {...}, "payload": {...}}')
    if "auth_data" not in body and not unsecured:
        raise TicketRejected(401, "missing", "`auth_data` is missing: get a ticket from /route/")
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise InvalidPayload("`payload` must be a JSON object (a TGI request body)")
    return body.get("auth_data"), payload


def _workload(path: str, payload: dict[str, Any], default_max_new_tokens: int) -> int:
    try:
        return workload_for_path(path, payload, default_max_new_tokens)
    except WorkloadError as exc:
        raise InvalidPayload(str(exc)) from None


async def _verify_ticket(app: web.Application, auth_data: Any, workload: int) -> None:
    verifier = app[VERIFIER]
    try:
        verifier.verify(auth_data, workload)
    except TicketRejected as exc:
        if not _may_be_a_new_key(verifier.scheme, exc) or not await app[REFRESHER].refresh():
            app[METRICS].ticket_rejections[exc.reason] += 1
            raise
        try:
            verifier.verify(auth_data, workload)  # the router may have rotated its key
        except TicketRejected as again:
            app[METRICS].ticket_rejections[again.reason] += 1
            raise


def _may_be_a_new_key(scheme: TicketScheme, exc: TicketRejected) -> bool:
    """Vast tickets name no key: a bad signature may come from a key we have not seen yet."""
    return exc.reason == "unknown_key" or (scheme.uses_rsa and exc.reason == "bad_signature")


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


async def health(request: web.Request) -> web.Response:
    lifecycle = request.app[LIFECYCLE]
    body: dict[str, Any] = {"state": lifecycle.state.value, "error_msg": lifecycle.error_msg}
    if request.app[SETTINGS].unsecured:
        body["warnings"] = [UNSECURED_WARNING]
    return web.json_response(body, status=200 if lifecycle.serving else 503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector) as session:
        app[SESSION] = session
        app[RELAY] = Relay(
            settings.backend_url,
            connect_timeout_s=settings.connect_timeout_s,
            first_byte_timeout_s=settings.first_byte_timeout_s,
            idle_timeout_s=settings.stream_idle_timeout_s,
        )
        app[REFRESHER] = KeyRefresher(
            app[VERIFIER],
            lambda: fetch_keys(session, settings.report_addresses, settings.ticket_scheme),
            clock=time.monotonic,
            min_interval_s=settings.key_refresh_interval_s,
        )
        yield
        await app[RELAY].close()


async def _background_tasks(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.unsecured:
        _warn_unsecured()
    reporter = StatusReporter(
        app[SESSION],
        settings.report_addresses,
        lambda: build_report(
            worker_id=settings.worker_id,
            url=settings.advertised_url,
            endpoint=settings.endpoint,
            lifecycle=app[LIFECYCLE],
            load=app[LOAD],
            unsecured=settings.unsecured,
        ),
        app[LIFECYCLE].changed,
        interval_s=settings.report_interval_s,
        token=settings.worker_token.get_secret_value() if settings.worker_token else None,
    )
    app[REPORTER] = reporter
    tasks = [
        asyncio.create_task(_bring_up(app), name="bring-up"),
        asyncio.create_task(reporter.run(), name="status-reporter"),
    ]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    app[LIFECYCLE].move_to(WorkerState.STOPPED)
    await reporter.send_final()


def _warn_unsecured() -> None:
    banner = "!" * 78
    log.warning("%s\n%s\n%s", banner, UNSECURED_WARNING, banner)


async def _bring_up(app: web.Application) -> None:
    """Keys (unless unsecured), then supervise the backend: loading → ... → ready ⇄ error."""
    settings, lifecycle = app[SETTINGS], app[LIFECYCLE]
    session = app[SESSION]
    if not settings.unsecured:
        keys = await fetch_keys_until_success(
            session, settings.report_addresses, settings.ticket_scheme
        )
        app[REFRESHER].install(keys)

    def on_ready(info: Info, perf: float) -> None:
        app[GATE].set_limit(settings.max_concurrency or max(1, info.max_concurrent_requests))

    follower = LogFollower(settings.model_log).lines() if settings.model_log else None
    supervisor = Supervisor(
        BackendProbe(session, settings.backend_url),
        lifecycle,
        on_ready=on_ready,
        health_interval_s=settings.health_interval_s,
        benchmark_tokens=settings.benchmark_tokens,
        benchmark_concurrency=settings.benchmark_concurrency,
        log_lines=follower,
    )
    await supervisor.run()


async def _drain(app: web.Application) -> None:
    """Stop taking requests, say so, and give in-flight ones up to the grace period to end."""
    lifecycle, load = app[LIFECYCLE], app[LOAD]
    lifecycle.move_to(WorkerState.DRAINING)
    reporter = app.get(REPORTER)
    if reporter is not None:
        with contextlib.suppress(asyncio.CancelledError):
            await reporter.send_final(WorkerState.DRAINING)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(app[SETTINGS].drain_grace_s):
            await load.idle.wait()
    if load.requests_working:
        log.warning("drain grace over with %d request(s) still in flight", load.requests_working)
