"""The router's aiohttp application.

POST /route/            {"endpoint", "cost", "request_idx"?, "avoid"?, "session"?} + API key
                        → a signed ticket, or Vast's "no worker yet" answer after a bounded wait
GET  /pubkey/           the newest public key, PEM (where Vast's PyWorker looks)
GET  /keys              every key whose tickets workers should accept, with its kid
POST /worker_status/    a worker's status report (with the worker token, when set)
GET  /status            endpoints and their workers, as JSON (no secrets)
GET  /ui                the same as a small read-only HTML page
GET  /metrics           Prometheus metrics
GET  /health            the router itself is up
/api/v0/...             the management API (endpoints, worker groups, key rotation): admin key

The routing itself lives in `RouteService` (`app[SERVICE]`, ready once the app has started):
`await app[SERVICE].issue_ticket(endpoint, cost, request_idx=..., avoid=..., session=...)`.
Gateway mode (`router.gateway.proxy`, /endpoints/{name}/...) and Vast.ai's client and PyWorker
routes (`router.vast.routes`) are added on top; they reach the core through
`router.routing.backplane`, a thin adapter over that service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from protocol import (
    KeySet,
    PublishedKey,
    RouterStatus,
    SigningKey,
    Ticket,
    WorkerStatusReport,
    encode_route_answer,
)
from router.autoscaler.demand import DemandSignal
from router.credentials import bearer_token, master_token, same_secret
from router.endpoints.models import Endpoint
from router.endpoints.store import EndpointStore
from router.errors import (
    EndpointNotFound,
    Forbidden,
    RouterError,
    Unauthorized,
)
from router.gateway import proxy as gateway
from router.http.bodies import parse_model, read_json, route_args
from router.http.management import add_management_routes
from router.http.metrics import CONTENT_TYPE, RouterMetrics
from router.http.status_page import render_status_page
from router.keys.reqnums import ReqnumFile, ReqnumHighWater, Submit
from router.keys.ring import KeyRing, RingKey, generate_private_key
from router.keys.store import load_key_ring, save_key_ring
from router.keys.tickets import TicketIssuer, TicketScheme, key_alg
from router.logs import event
from router.routing.backplane import BACKPLANE, CoreBackplane
from router.routing.registry import WorkerRegistry
from router.routing.service import RouteService
from router.routing.status import router_status
from router.routing.waiting import WaitQueue
from router.settings import RouterSettings
from router.vast import routes as vast_compat

__all__ = [
    "ADMISSION",
    "DEMAND",
    "REGISTRY",
    "SERVICE",
    "STORE",
    "create_app",
]

log = logging.getLogger(__name__)

Admission = Callable[[str], bool]

SETTINGS = web.AppKey("settings", RouterSettings)
REGISTRY = web.AppKey("registry", WorkerRegistry)
STORE = web.AppKey("store", EndpointStore)
ISSUER = web.AppKey("issuer", TicketIssuer)
SERVICE = web.AppKey("service", RouteService)
QUEUE = web.AppKey("queue", WaitQueue)
METRICS = web.AppKey("metrics", RouterMetrics)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
RNG = web.AppKey("rng", random.Random)
DEMAND = web.AppKey("demand", DemandSignal)
ADMISSION: web.AppKey[Admission] = web.AppKey("admission")
"""Which worker ids may report when `accept_unknown_workers` is off (set it before start-up)."""
HIGH_WATER = web.AppKey("high_water", ReqnumHighWater)
ROTATION = web.AppKey("key_rotation", asyncio.Lock)


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
        stale_after_s=settings.worker_stale_s,
        settle_s=settings.ticket_settle_s,
        reqnum_floor=lambda: _reqnum_floor(app),
    )
    app[STORE] = EndpointStore(settings.state_dir)
    app[CLOCK] = clock
    app[RNG] = rng or random.Random()
    app[DEMAND] = demand if demand is not None else DemandSignal()
    app[ADMISSION] = lambda worker_id: True
    app[ROTATION] = asyncio.Lock()
    app.cleanup_ctx.append(_startup(signing_key))
    app.router.add_post("/route/", route)
    app.router.add_get("/pubkey/", pubkey)
    app.router.add_get("/keys", keys)
    app.router.add_post("/worker_status/", worker_status)
    app.router.add_get("/status", status)
    app.router.add_get("/ui", status_page)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    add_management_routes(app, lambda a: a[SERVICE], _rotation)
    gateway.setup(app, settings)
    vast_compat.setup(app, settings)
    return app


def _reqnum_floor(app: web.Application) -> int:
    high_water = app.get(HIGH_WATER)
    return high_water.floor() if high_water is not None else int(app[CLOCK]() * 1000)


# -- start-up ----------------------------------------------------------------------------------


def _startup(
    injected: SigningKey | None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        settings, store = app[SETTINGS], app[STORE]
        await asyncio.to_thread(store.load)
        if _ensure_bootstrap_endpoint(store, settings, app[CLOCK]()):
            await store.save()
        scheme = TicketScheme(settings.ticket_scheme)
        if injected is not None:
            ring = KeyRing([RingKey(injected.private_key, 0.0)], ttl_s=settings.ticket_ttl_s)
        else:
            ring = await asyncio.to_thread(
                load_key_ring, settings.state_dir, key_alg(scheme), ttl_s=settings.ticket_ttl_s
            )
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reqnum-writer")
        app[HIGH_WATER] = await asyncio.to_thread(
            _high_water, settings, app[CLOCK](), writer.submit
        )
        app[ISSUER] = TicketIssuer(
            ring,
            app[REGISTRY],
            ttl_s=settings.ticket_ttl_s,
            scheme=scheme,
            high_water=app[HIGH_WATER],
        )
        service = RouteService(
            settings,
            store,
            app[REGISTRY],
            app[ISSUER],
            clock=app[CLOCK],
            rng=app[RNG],
            demand=app[DEMAND],
        )
        app[SERVICE] = service
        app[BACKPLANE] = CoreBackplane(service)
        app[QUEUE] = service.queue
        app[METRICS] = RouterMetrics(app[REGISTRY], service.queue, app[CLOCK])
        rotation = None
        if settings.key_rotation_s > 0:
            rotation = asyncio.create_task(_rotate_every(app, settings.key_rotation_s))
        event(
            log,
            "router_started",
            endpoints=len(store.endpoints),
            scheme=scheme.value,
            kid=ring.signing_key(app[CLOCK]()).kid,
        )
        yield
        if rotation is not None:
            rotation.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rotation
        await asyncio.to_thread(writer.shutdown, wait=True)  # a ceiling being written lands

    return context


def _ensure_bootstrap_endpoint(store: EndpointStore, settings: RouterSettings, now: float) -> bool:
    """The settings' endpoint (`default`) exists, with the settings' API key when one is set.
    True if that changed anything."""
    current = store.endpoints.get(settings.endpoint)
    key = settings.api_key
    if current is None:
        store.put_endpoint(Endpoint(name=settings.endpoint, api_key=key, created_at=now))
        return True
    if key.get_secret_value() and key.get_secret_value() != current.api_key.get_secret_value():
        store.put_endpoint(
            current.model_copy(update={"api_key": SecretStr(key.get_secret_value())})
        )
        return True
    return False


def _high_water(settings: RouterSettings, now: float, submit: Submit) -> ReqnumHighWater:
    """Blocking (file I/O): start above everything a predecessor could have issued. Later
    blocks are written by `submit` (the writer thread), off the event loop."""
    file = ReqnumFile(settings.state_dir)
    start = max(file.load(), int(now * 1000))
    return ReqnumHighWater(
        start=start, persist=file.store, block=settings.reqnum_block, submit=submit
    )


def _rotation(app: web.Application) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def rotate() -> dict[str, Any]:
        return await rotate_signing_key(app)

    return rotate


async def rotate_signing_key(app: web.Application) -> dict[str, Any]:
    """Publish a new key now; it signs after `key_lead_s`. Persisted before it is published.
    Rotations (asked for, and periodic) run one at a time, and a caller cancelled meanwhile
    does not cut its write short, so an older ring never overwrites a newer one."""
    return await asyncio.shield(_rotate(app))


async def _rotate(app: web.Application) -> dict[str, Any]:
    settings, ring = app[SETTINGS], app[ISSUER].ring
    alg = key_alg(TicketScheme(settings.ticket_scheme))
    async with app[ROTATION]:
        private, now = await asyncio.to_thread(generate_private_key, alg), app[CLOCK]()
        rotated = ring.copy()
        added = rotated.rotate(private, now, lead_s=settings.key_lead_s)
        await asyncio.to_thread(save_key_ring, settings.state_dir, rotated)
        ring.rotate(private, now, lead_s=settings.key_lead_s)  # the same ring as written
    event(log, "key_rotated", kid=added.kid, signs_from=added.signs_from)
    return {
        "kid": added.kid,
        "signs_from": added.signs_from,
        "published": [key.kid for key in ring.published(app[CLOCK]())],
    }


async def _rotate_every(app: web.Application, period_s: float) -> None:
    while True:
        await asyncio.sleep(period_s)
        try:
            await rotate_signing_key(app)
        except Exception:
            log.exception("key rotation failed; the current key keeps signing")


# -- errors ------------------------------------------------------------------------------------


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except RouterError as exc:
        return _error_response(exc)
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


def _error_response(exc: RouterError) -> web.Response:
    headers = {}
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    body = {"error": exc.message, "error_type": exc.error_type}
    return web.json_response(body, status=exc.status, headers=headers)


def _extra_headers(exc: web.HTTPException) -> dict[str, str]:
    """An HTTP exception's headers that still apply to a JSON body (e.g. `Allow` on a 405)."""
    return {
        k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")
    }


# -- route -------------------------------------------------------------------------------------


async def route(request: web.Request) -> web.Response:
    app = request.app
    service, started = app[SERVICE], time.perf_counter()
    label = ""
    try:
        body = route_args(await read_json(request))
        if body.endpoint in service.store.endpoints:
            label = body.endpoint
        service.authenticate(body.endpoint, bearer_token(request) or body.api_key)
        answer = await service.issue_ticket(
            body.endpoint,
            body.cost,
            request_idx=body.request_idx,
            avoid=body.avoid,
            session=body.session,
            timeout_s=vast_compat.route_wait_s(request, app[SETTINGS]),
        )
    except RouterError as exc:
        app[METRICS].route_done(label, exc.error_type, time.perf_counter() - started)
        raise
    outcome = "ticket" if isinstance(answer, Ticket) else "waiting"
    app[METRICS].route_done(label, outcome, time.perf_counter() - started)
    return web.Response(body=encode_route_answer(answer), content_type="application/json")


# -- workers -----------------------------------------------------------------------------------


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


# -- keys --------------------------------------------------------------------------------------


def _published(app: web.Application) -> list[RingKey]:
    return app[ISSUER].ring.published(app[CLOCK]())


async def pubkey(request: web.Request) -> web.Response:
    newest = _published(request.app)[-1]
    return web.Response(text=newest.public_pem, content_type="application/x-pem-file")


async def keys(request: web.Request) -> web.Response:
    published = [
        PublishedKey(kid=key.kid, alg=key.alg.value, public_key=key.public_pem)
        for key in _published(request.app)
    ]
    return web.json_response(KeySet(keys=published).model_dump())


# -- observability -----------------------------------------------------------------------------


def status_view(app: web.Application) -> RouterStatus:
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


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
