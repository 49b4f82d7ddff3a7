"""The router's aiohttp application.

POST /route/            {"endpoint", "cost", "request_idx"?} + API key → a signed ticket
GET  /pubkey/           the current public key, PEM (where Vast's PyWorker looks)
GET  /keys              every key whose tickets workers should accept, with its kid
POST /worker_status/    a worker's status report (with the worker token, when set)
GET  /status            endpoints and their workers, as JSON (no secrets)
GET  /health            the router itself is up

Gateway mode (`router.gateway`) and Vast.ai's client and PyWorker routes (`router.vast_compat`)
are added on top; they reach the core only through the `Backplane` seam (`router.backplane`).
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import ValidationError

from protocol import KeySet, RouteRequest, RouteWaiting, SigningKey, WorkerStatusReport
from protocol.keys import public_key_pem
from router import gateway, vast_compat
from router.autoscaler.demand import DemandSignal
from router.backplane import BACKPLANE, EndpointView, WorkerView
from router.errors import (
    BadRequest,
    EndpointNotFound,
    InvalidRequest,
    Overloaded,
    RouterError,
    Unauthorized,
)
from router.keystore import load_or_create_signing_key
from router.registry import WorkerRecord, WorkerRegistry
from router.routing import least_expected_wait
from router.settings import RouterSettings
from router.tickets import TicketIssuer
from router.vast_signing import VastSigner, load_or_create_rsa_key, variant_for_scheme

__all__ = ["DEMAND", "REGISTRY", "create_app"]

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", RouteRequest, WorkerStatusReport)


@dataclass
class RouteQueue:
    """Clients waiting for a worker: a bounded count, woken by every status report."""

    capacity: asyncio.Condition
    waiting: int = 0


SETTINGS = web.AppKey("settings", RouterSettings)
REGISTRY = web.AppKey("registry", WorkerRegistry)
ISSUER = web.AppKey("issuer", TicketIssuer)
QUEUE = web.AppKey("queue", RouteQueue)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
RNG = web.AppKey("rng", random.Random)
REQUEST_IDS: web.AppKey[itertools.count[int]] = web.AppKey("request_ids")
DEMAND = web.AppKey("demand", DemandSignal)


def create_app(
    settings: RouterSettings,
    *,
    signing_key: SigningKey | None = None,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    demand: DemandSignal | None = None,
) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[error_middleware])
    app[SETTINGS] = settings
    app[REGISTRY] = WorkerRegistry(
        stale_after_s=settings.worker_stale_s, settle_s=settings.ticket_settle_s
    )
    app[CLOCK] = clock
    app[RNG] = rng or random.Random()
    app[REQUEST_IDS] = itertools.count(1)
    app[DEMAND] = demand if demand is not None else DemandSignal()
    app.cleanup_ctx.append(_signing_key(signing_key))
    app.router.add_post("/route/", route)
    app.router.add_get("/pubkey/", pubkey)
    app.router.add_get("/keys", keys)
    app.router.add_post("/worker_status/", worker_status)
    app.router.add_get("/status", status)
    app.router.add_get("/health", health)
    app[BACKPLANE] = CoreBackplane(app)
    gateway.setup(app, settings)
    vast_compat.setup(app, settings)
    return app


def _signing_key(
    injected: SigningKey | None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        key = injected
        if key is None:
            key = await asyncio.to_thread(load_or_create_signing_key, settings.state_dir)
        app[ISSUER] = TicketIssuer(
            key, app[REGISTRY], ttl_s=settings.ticket_ttl_s, vast=await _vast_signer(settings)
        )
        app[QUEUE] = RouteQueue(asyncio.Condition())
        yield

    return context


async def _vast_signer(settings: RouterSettings) -> VastSigner | None:
    variant = variant_for_scheme(settings.ticket_scheme)
    if variant is None:
        return None
    key = await asyncio.to_thread(load_or_create_rsa_key, settings.state_dir)
    return VastSigner(key, variant)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except RouterError as exc:
        headers = {}
        if exc.retry_after_s is not None:
            headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
        body = {"error": exc.message, "error_type": exc.error_type}
        return web.json_response(body, status=exc.status, headers=headers)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].max_body_bytes
        body = {"error": f"request body is over the {limit}-byte limit", "error_type": "too_large"}
        return web.json_response(body, status=413)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response(
            {"error": exc.reason, "error_type": "http"},
            status=exc.status,
            headers=_extra_headers(exc),
        )


def _extra_headers(exc: web.HTTPException) -> dict[str, str]:
    """An HTTP exception's headers that still apply to a JSON body (e.g. `Allow` on a 405)."""
    return {
        k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")
    }


async def route(request: web.Request) -> web.Response:
    app = request.app
    route_request = _parse(RouteRequest, await _read_json(request))
    settings = app[SETTINGS]
    if route_request.endpoint != settings.endpoint:
        raise EndpointNotFound(f"no endpoint named {route_request.endpoint!r}")
    _check_api_key(request, route_request, settings)
    request_ids = app[REQUEST_IDS]
    request_idx = route_request.request_idx or next(request_ids)  # Vast's client starts at 0
    if not route_request.request_idx:
        app[DEMAND].arrived(route_request.cost)  # a poll for the same request is not new demand
    worker = await _wait_for_worker(
        app,
        route_request.endpoint,
        route_request.cost,
        frozenset(route_request.avoid),
        timeout_s=vast_compat.route_wait_s(request, settings),
    )
    now = app[CLOCK]()
    if worker is None:
        waiting = RouteWaiting(
            endpoint=route_request.endpoint,
            status=app[REGISTRY].counts_by_state(route_request.endpoint, now),
            request_idx=request_idx,
        )
        return web.json_response(waiting.model_dump())
    ticket = app[ISSUER].issue(
        worker,
        endpoint=route_request.endpoint,
        cost=route_request.cost,
        request_idx=request_idx,
        now=now,
    )
    return web.json_response(ticket)


def _check_api_key(request: web.Request, body: RouteRequest, settings: RouterSettings) -> None:
    presented = _bearer_token(request) or body.api_key or ""
    expected = settings.api_key.get_secret_value()
    if not expected or not _same_secret(presented, expected):
        raise Unauthorized(
            "missing or wrong API key: send `Authorization: Bearer <key>` (or `api_key`)"
        )


def _bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _same_secret(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def _pick(
    app: web.Application,
    endpoint: str,
    avoid: frozenset[str] = frozenset(),
    *,
    strict: bool = False,
) -> WorkerRecord | None:
    """The ready worker with the least expected wait, preferring those not in `avoid` (and
    never one in it when `strict`)."""
    registry, now = app[REGISTRY], app[CLOCK]()
    registry.expire_pending(now)
    candidates = registry.routable(endpoint, now)
    preferred = [worker for worker in candidates if worker.url not in avoid]
    return least_expected_wait(preferred if strict else preferred or candidates, app[RNG])


async def _wait_for_worker(
    app: web.Application,
    endpoint: str,
    cost: float = 0.0,
    avoid: frozenset[str] = frozenset(),
    *,
    strict: bool = False,
    timeout_s: float | None = None,
) -> WorkerRecord | None:
    """A ready worker now, or within `route_timeout_s` (or `timeout_s`); None if none came.
    While it waits, the autoscaler's demand signal counts it (and wakes the autoscaler: scale
    from zero)."""
    worker = _pick(app, endpoint, avoid, strict=strict)
    settings, queue = app[SETTINGS], app[QUEUE]
    wait_s = settings.route_timeout_s if timeout_s is None else timeout_s
    if worker is not None or wait_s == 0:
        return worker
    if queue.waiting >= settings.max_waiting_routes:
        raise Overloaded(
            "too many requests are already waiting for a worker; retry later",
            retry_after_s=settings.route_timeout_s,
        )
    queue.waiting += 1
    app[DEMAND].waiting_started(cost)
    try:
        async with asyncio.timeout(wait_s), queue.capacity:
            while (worker := _pick(app, endpoint, avoid, strict=strict)) is None:
                await queue.capacity.wait()
            return worker
    except TimeoutError:
        return None
    finally:
        queue.waiting -= 1
        app[DEMAND].waiting_ended(cost)


async def worker_status(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    body = await _read_json(request)
    expected = settings.worker_token.get_secret_value()
    presented = _bearer_token(request) or vast_compat.master_token(body)  # Vast sends `mtoken`
    if expected and not _same_secret(presented, expected):
        raise Unauthorized("status report without the right worker token")
    report = _parse(WorkerStatusReport, vast_compat.normalize_report(body, settings.endpoint))
    if report.endpoint != settings.endpoint:
        raise EndpointNotFound(f"no endpoint named {report.endpoint!r}")
    before = app[REGISTRY].get(report.id)
    previous_state = before.state if before else None
    record = app[REGISTRY].apply_report(report, app[CLOCK]())
    if record is None or record.state != previous_state:
        log.info("worker %s (%s): %s", report.id, report.url, report.state.value)
    queue = app[QUEUE]
    async with queue.capacity:
        queue.capacity.notify_all()
    return web.json_response({"accepted": True})


async def pubkey(request: web.Request) -> web.Response:
    issuer = request.app[ISSUER]
    pem = issuer.vast.public_pem if issuer.vast else public_key_pem(issuer.key.public_key)
    return web.Response(text=pem, content_type="application/x-pem-file")


async def keys(request: web.Request) -> web.Response:
    issuer = request.app[ISSUER]
    key_set = KeySet(keys=[] if issuer.vast else [issuer.key.published()])  # RSA: at /pubkey/
    return web.json_response(key_set.model_dump())


async def status(request: web.Request) -> web.Response:
    app = request.app
    now = app[CLOCK]()
    endpoint = app[SETTINGS].endpoint
    workers = [_worker_view(worker, now) for worker in app[REGISTRY] if worker.endpoint == endpoint]
    return web.json_response({"endpoints": [{"name": endpoint, "workers": workers}]})


def _worker_view(worker: WorkerRecord, now: float) -> dict[str, Any]:
    return {
        "id": worker.id,
        "url": worker.url,
        "state": worker.state.value,
        "max_perf": worker.max_perf,
        "expected_load": worker.expected_load,
        "expected_wait_s": worker.expected_wait_s,
        "error_msg": worker.error_msg,
        "last_report_age_s": round(now - worker.last_report_at, 3),
    }


class CoreBackplane:
    """The core's side of the seam that gateway mode and the Vast routes use (one endpoint,
    from the settings, for now)."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._created_at = app[CLOCK]()

    def endpoints(self) -> Sequence[EndpointView]:
        settings = self._app[SETTINGS]
        api_key = settings.api_key.get_secret_value()
        return [EndpointView(settings.endpoint, api_key, self._created_at)]

    def endpoint(self, name: str) -> EndpointView | None:
        return next((view for view in self.endpoints() if view.name == name), None)

    def is_admin_key(self, presented: str) -> bool:
        return False  # no admin key yet: an endpoint's own key sees that endpoint only

    async def ticket(
        self, endpoint: str, cost: float, *, avoid: frozenset[str], wait: bool
    ) -> dict[str, Any] | None:
        app = self._app
        if wait:
            app[DEMAND].arrived(cost)
            worker = await _wait_for_worker(app, endpoint, cost, avoid, strict=True)
        else:
            worker = _pick(app, endpoint, avoid, strict=True)
        if worker is None:
            return None
        request_ids = app[REQUEST_IDS]
        request_idx = next(request_ids)
        now = app[CLOCK]()
        return app[ISSUER].issue(
            worker, endpoint=endpoint, cost=cost, request_idx=request_idx, now=now
        )

    def workers(self, endpoint: str) -> Sequence[WorkerView]:
        return [
            WorkerView(
                id=worker.id,
                url=worker.url,
                state=worker.state.value,
                max_perf=worker.max_perf,
                expected_load=worker.expected_load,
                last_report_at=worker.last_report_at,
            )
            for worker in self._app[REGISTRY]
            if worker.endpoint == endpoint
        ]

    def worker_failed(self, endpoint: str, url: str, reason: str) -> None:
        log.warning("worker %s of endpoint %r failed a gateway request: %s", url, endpoint, reason)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _read_json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


def _parse(model: type[ModelT], body: Any) -> ModelT:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequest(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)
