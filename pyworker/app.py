"""The PyWorker's aiohttp application: ticket checks at the door, then relay to the backend.

    POST /generate, /generate_stream    {"auth_data": <ticket>, "payload": <TGI body>}
    GET  /ping, /health                  liveness, and whether the backend is serving

A request goes through, in order: size limit (413), JSON (400), envelope (422), workload of
the payload (422), ticket checks (401/403), readiness (503), then the relay, with its workload
counted in flight until the last byte is sent.
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
from aiohttp import web

from protocol import WorkerState, workload_of
from protocol.workload import WorkloadError
from pyworker.backend import BackendProbe, BackendProbeError
from pyworker.errors import (
    BadRequest,
    InvalidPayload,
    NotReady,
    PayloadTooLarge,
    TicketRejected,
    WorkerError,
)
from pyworker.keys import KeyFetchError, fetch_keys, fetch_keys_until_success
from pyworker.lifecycle import Lifecycle
from pyworker.load import LoadTracker
from pyworker.relay import Relay
from pyworker.reporter import StatusReporter, build_report
from pyworker.settings import WorkerSettings
from pyworker.tickets import TicketVerifier

__all__ = ["create_app"]

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", WorkerSettings)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
LOAD = web.AppKey("load", LoadTracker)
VERIFIER = web.AppKey("verifier", TicketVerifier)
SESSION = web.AppKey("session", aiohttp.ClientSession)
RELAY = web.AppKey("relay", Relay)
KEY_REFRESH = web.AppKey("key_refresh", asyncio.Lock)

RELAYED_PATHS = ("/generate", "/generate_stream")
KEY_REFRESH_MIN_INTERVAL_S = 5.0


def create_app(
    settings: WorkerSettings, *, clock: Callable[[], float] = time.time
) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[error_middleware])
    app[SETTINGS] = settings
    app[LIFECYCLE] = Lifecycle(clock=clock)
    app[LOAD] = LoadTracker(clock=clock)
    app[VERIFIER] = TicketVerifier(
        settings.advertised_url,
        {},
        clock=clock,
        clock_skew_s=settings.clock_skew_s,
        replay_window=settings.replay_window,
    )
    app[KEY_REFRESH] = asyncio.Lock()
    app.cleanup_ctx.append(_client_session)
    app.cleanup_ctx.append(_background_tasks)
    for path in RELAYED_PATHS:
        app.router.add_post(path, _relay_handler(path))
    app.router.add_get("/ping", ping)
    app.router.add_get("/health", health)
    return app


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except WorkerError as exc:
        return _error_response(exc)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].max_body_bytes
        return _error_response(PayloadTooLarge(f"request body is over the {limit}-byte limit"))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {
            k: v
            for k, v in exc.headers.items()
            if k.lower() not in ("content-type", "content-length")
        }
        return web.json_response(
            {"error": exc.reason, "error_type": "http"}, status=exc.status, headers=headers
        )


def _error_response(exc: WorkerError) -> web.Response:
    body: dict[str, Any] = {"error": exc.message, "error_type": exc.error_type}
    if isinstance(exc, TicketRejected):
        body["reason"] = exc.reason
    headers = {"Retry-After": "1"} if isinstance(exc, NotReady) else None
    return web.json_response(body, status=exc.status, headers=headers)


def _relay_handler(path: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await relay_request(request, path)

    return handler


async def relay_request(request: web.Request, path: str) -> web.StreamResponse:
    app = request.app
    auth_data, payload = _parse_envelope(await _read_json(request))
    workload = _workload(payload, app[LIFECYCLE].max_new_tokens_default)
    await _verify_ticket(app, auth_data, workload)
    lifecycle = app[LIFECYCLE]
    if not lifecycle.serving:
        raise NotReady(f"worker is not serving (state: {lifecycle.state.value}); route again")
    with app[LOAD].slot(workload) as slot:
        return await app[RELAY].forward(request, path, payload, slot)


async def _read_json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


def _parse_envelope(body: Any) -> tuple[Any, dict[str, Any]]:
    if not isinstance(body, dict):
        raise InvalidPayload('body must be a JSON object {"auth_data": {...}, "payload": {...}}')
    if "auth_data" not in body:
        raise TicketRejected(401, "missing", "`auth_data` is missing: get a ticket from /route/")
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise InvalidPayload("`payload` must be a JSON object (a TGI request body)")
    return body["auth_data"], payload


def _workload(payload: dict[str, Any], default_max_new_tokens: int) -> int:
    try:
        return workload_of(payload, default_max_new_tokens)
    except WorkloadError as exc:
        raise InvalidPayload(str(exc)) from None


async def _verify_ticket(app: web.Application, auth_data: Any, workload: int) -> None:
    verifier = app[VERIFIER]
    try:
        verifier.verify(auth_data, workload)
    except TicketRejected as exc:
        if exc.reason != "unknown_key" or not await _refresh_keys(app):
            raise
        verifier.verify(auth_data, workload)  # the router may have rotated its key


async def _refresh_keys(app: web.Application) -> bool:
    """Fetch the router's keys again, at most once per interval; True if the set changed."""
    lock = app[KEY_REFRESH]
    if lock.locked():
        return False
    async with lock:
        verifier = app[VERIFIER]
        before = verifier.known_kids
        try:
            verifier.set_keys(await fetch_keys(app[SESSION], app[SETTINGS].report_addresses))
        except KeyFetchError as exc:
            log.warning("key refresh failed: %s", exc)
        await asyncio.sleep(KEY_REFRESH_MIN_INTERVAL_S)  # hold the lock: rate limit
        return verifier.known_kids != before


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


async def health(request: web.Request) -> web.Response:
    lifecycle = request.app[LIFECYCLE]
    body = {"state": lifecycle.state.value, "error_msg": lifecycle.error_msg}
    return web.json_response(body, status=200 if lifecycle.serving else 503)


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector) as session:
        app[SESSION] = session
        app[RELAY] = Relay(
            session,
            settings.backend_url,
            connect_timeout_s=settings.connect_timeout_s,
            idle_timeout_s=settings.stream_idle_timeout_s,
        )
        yield


async def _background_tasks(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    reporter = StatusReporter(
        app[SESSION],
        settings.report_addresses,
        lambda: build_report(
            worker_id=settings.worker_id,
            url=settings.advertised_url,
            endpoint=settings.endpoint,
            lifecycle=app[LIFECYCLE],
            load=app[LOAD],
        ),
        app[LIFECYCLE].changed,
        interval_s=settings.report_interval_s,
        token=settings.worker_token.get_secret_value() if settings.worker_token else None,
    )
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


async def _bring_up(app: web.Application) -> None:
    """Keys, then a healthy backend, then a measured max_perf; then watch the backend's health."""
    settings, lifecycle = app[SETTINGS], app[LIFECYCLE]
    probe = BackendProbe(app[SESSION], settings.backend_url)
    app[VERIFIER].set_keys(await fetch_keys_until_success(app[SESSION], settings.report_addresses))
    lifecycle.move_to(WorkerState.LOADING)
    while True:  # an `error` state stays, with its message, until the backend is healthy again
        await probe.wait_until_healthy()
        try:
            info = await probe.info()
            lifecycle.move_to(WorkerState.BENCHMARKING)
            perf = await probe.measure_tokens_per_second(settings.benchmark_tokens)
        except (BackendProbeError, aiohttp.ClientError, TimeoutError) as exc:
            lifecycle.move_to(WorkerState.ERROR, f"backend check failed: {exc}")
            await asyncio.sleep(settings.health_interval_s)
            continue
        log.info("backend ready: %s, max_perf %.1f tokens/s", info.model_id, perf)
        lifecycle.mark_ready(perf, info.max_total_tokens)
        await _watch_health(probe, lifecycle, settings.health_interval_s)


async def _watch_health(probe: BackendProbe, lifecycle: Lifecycle, interval_s: float) -> None:
    """Return when the backend stops being healthy (after marking the worker `error`)."""
    while True:
        await asyncio.sleep(interval_s)
        if not await probe.healthy():
            lifecycle.move_to(WorkerState.ERROR, "backend /health is failing")
            return
