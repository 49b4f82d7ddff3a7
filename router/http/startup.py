"""The router's start-up: named steps, run in order; on shutdown, their teardowns in reverse.

    connect_shared_state      with `state_url`: the store the routers share (Redis)
    load_endpoints            the endpoint store, with the settings' endpoint in it
    load_worker_identities    the workers' join tokens and credentials
    open_key_ring             the signing keys, and their rotation
    start_reqnum_writer       the reqnum high-water mark and the thread that writes it
    build_route_service       the ticket issuer, the route service, and what reads the service
    rotate_keys_periodically  a new signing key every `key_rotation_s`, when that is set
    sync_shared_state         with `state_url`: a first flush, then one every `state_flush_s`
    store_unsaved_endpoints   an endpoint change a full disk refused, written once it has room

`router_lifetime` is the app's `cleanup_ctx` entry (`create_app` registers it): it runs `STEPS`
and then logs `router_started`. Each step is an async context manager over the app: it reads
what `create_app` and the steps before it set (`router.http.state`), sets its own keys, and
undoes what needs undoing on the way out, also when a later step fails to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from router.endpoints.models import Endpoint
from router.endpoints.store import EndpointStore
from router.errors import Unavailable
from router.http.metrics import RouterMetrics
from router.http.state import (
    CLOCK,
    DEMAND,
    HIGH_WATER,
    IDENTITIES,
    KEY_RING,
    METRICS,
    REGISTRY,
    RNG,
    ROTATION,
    SERVICE,
    SETTINGS,
    SHARED_STATE,
    STATE_SYNC,
    STORE,
)
from router.keys.reqnums import ReqnumFile, ReqnumHighWater, Submit
from router.keys.ring import KeyRing
from router.keys.rotation import KeyRotation
from router.keys.store import load_key_ring, ring_to_bytes
from router.keys.tickets import TicketIssuer, key_alg
from router.logs import event
from router.routing.backplane import BACKPLANE, CoreBackplane
from router.routing.service import RouteService
from router.settings import RouterSettings
from router.state.redis_store import RedisState
from router.state.sealing import Sealer
from router.state.shared import StateUnavailable
from router.state.sync import StateSync, load_shared_endpoints, open_shared_ring

__all__ = [
    "STEPS",
    "Step",
    "build_route_service",
    "connect_shared_state",
    "load_endpoints",
    "load_worker_identities",
    "open_key_ring",
    "rotate_keys_periodically",
    "router_lifetime",
    "run_in_order",
    "start_reqnum_writer",
    "sync_shared_state",
]

log = logging.getLogger(__name__)

Step = Callable[[web.Application], AbstractAsyncContextManager[None]]


async def router_lifetime(app: web.Application) -> AsyncIterator[None]:
    """`STEPS` in order, then `router_started`; on shutdown, their teardowns in reverse."""
    async with run_in_order(STEPS, app):
        settings, now = app[SETTINGS], app[CLOCK]()
        event(
            log,
            "router_started",
            endpoints=len(app[STORE].endpoints),
            scheme=settings.ticket_scheme.value,
            kid=app[KEY_RING].signing_key(now).kid,
        )
        yield


@contextlib.asynccontextmanager
async def run_in_order(steps: Iterable[Step], app: web.Application) -> AsyncIterator[None]:
    """Enter each of `steps` after the one before; exit them in reverse order, also those
    already entered when a later one fails to start."""
    async with contextlib.AsyncExitStack() as stack:
        for step in steps:
            await stack.enter_async_context(step(app))
        yield


@contextlib.asynccontextmanager
async def connect_shared_state(app: web.Application) -> AsyncIterator[None]:
    """With `state_url`: the store the routers share (`SHARED_STATE`), its secret values sealed
    with a key derived from `state_secret`; closed on the way out. Without: nothing."""
    settings = app[SETTINGS]
    if settings.state_url is None:
        yield
        return
    sealer = Sealer(settings.state_secret.get_secret_value())
    app[SHARED_STATE] = state = RedisState(settings.state_url, sealer)
    try:
        yield
    finally:
        await state.close()


@contextlib.asynccontextmanager
async def load_endpoints(app: web.Application) -> AsyncIterator[None]:
    """Read the endpoint store from the state directory (or, sharing state, from the shared
    store, which this router's fill when it holds none). The settings' endpoint (`default`)
    exists, with the settings' API key when one is set; the store is saved if that changed it."""
    store = app[STORE]
    await asyncio.to_thread(store.load)
    if SHARED_STATE in app:
        await load_shared_endpoints(app[SHARED_STATE], store)
    if _ensure_bootstrap_endpoint(store, app[SETTINGS], app[CLOCK]()):
        await store.save()
    yield


@contextlib.asynccontextmanager
async def load_worker_identities(app: web.Application) -> AsyncIterator[None]:
    """Read the workers' join tokens and credentials from the state directory; say loudly when
    anonymous workers are allowed. On the way out, a removal being written lands."""
    settings, identities = app[SETTINGS], app[IDENTITIES]
    await asyncio.to_thread(identities.load)
    if settings.allow_anonymous_workers:
        event(
            log,
            "anonymous_workers_allowed",
            logging.WARNING,
            shared_token=bool(settings.worker_token.get_secret_value()),
            risk="a worker without a credential may report as any worker not registered with one",
        )
    try:
        yield
    finally:
        await identities.settled()


@contextlib.asynccontextmanager
async def open_key_ring(app: web.Application) -> AsyncIterator[None]:
    """The signing keys (`KEY_RING`): the ring `create_app` was given, else the one saved by the
    last rotation, else one key of the scheme's kind (created on first start). Their rotation
    (`ROTATION`) writes the ring back to the state directory. Sharing state, the shared ring
    (this one, when none is shared yet), and rotations write it there."""
    settings = app[SETTINGS]
    if KEY_RING not in app:
        alg, ttl_s = key_alg(settings.ticket_scheme), settings.ticket_ttl_s
        app[KEY_RING] = await asyncio.to_thread(load_key_ring, settings.state_dir, alg, ttl_s=ttl_s)
    save = None
    if SHARED_STATE in app:
        state = app[SHARED_STATE]
        app[KEY_RING] = await open_shared_ring(state, app[KEY_RING], settings)

        async def save(ring: KeyRing) -> None:
            try:
                await state.put_ring(ring_to_bytes(ring))
            except StateUnavailable:
                raise Unavailable(
                    "the shared state is away: the key ring cannot change until it is back "
                    "(the current key keeps signing)",
                    retry_after_s=1.0,
                ) from None

    app[ROTATION] = KeyRotation(app[KEY_RING], settings, app[CLOCK], save=save)
    try:
        yield
    finally:
        await app[ROTATION].settled()  # a rotation asked for or periodic: its write lands


@contextlib.asynccontextmanager
async def start_reqnum_writer(app: web.Application) -> AsyncIterator[None]:
    """The reqnum high-water mark (`HIGH_WATER`), above every reqnum a predecessor could have
    issued, and the thread that writes its later blocks. On the way out, a ceiling being
    written lands before the thread stops."""
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reqnum-writer")
    try:
        app[HIGH_WATER] = await asyncio.to_thread(
            _resume_high_water, app[SETTINGS], app[CLOCK](), writer.submit
        )
        yield
    finally:
        await asyncio.to_thread(writer.shutdown, wait=True)


@contextlib.asynccontextmanager
async def build_route_service(app: web.Application) -> AsyncIterator[None]:
    """The route service (`SERVICE`) with its ticket issuer over the key ring, and what reads
    the service: the gateway's and Vast's backplane, the metrics."""
    settings, registry = app[SETTINGS], app[REGISTRY]
    sync = None
    if SHARED_STATE in app:
        sync = StateSync(
            app[SHARED_STATE],
            router_id=secrets.token_hex(8),
            settings=settings,
            registry=registry,
            store=app[STORE],
            ring=app[KEY_RING],
            clock=app[CLOCK],
        )
        app[STATE_SYNC] = sync
    issuer = TicketIssuer(
        app[KEY_RING],
        registry,
        ttl_s=settings.ticket_ttl_s,
        scheme=settings.ticket_scheme,
        high_water=app[HIGH_WATER] if sync is None else None,
        reqnums=sync.take_reqnum if sync is not None else None,
    )
    service = RouteService(
        settings,
        app[STORE],
        registry,
        issuer,
        clock=app[CLOCK],
        rng=app[RNG],
        demand=app[DEMAND],
    )
    app[SERVICE], app[BACKPLANE] = service, CoreBackplane(service)
    if sync is not None:
        sync.service = service
    app[METRICS] = RouterMetrics(registry, service.queue, app[CLOCK], app[STORE].endpoints)
    yield


@contextlib.asynccontextmanager
async def rotate_keys_periodically(app: web.Application) -> AsyncIterator[None]:
    """A new signing key every `key_rotation_s` (0: only when asked for); stopped on the way
    out."""
    period_s = app[SETTINGS].key_rotation_s
    if period_s <= 0:
        yield
        return
    async with _in_background(app[ROTATION].run_every(period_s)):
        yield


@contextlib.asynccontextmanager
async def sync_shared_state(app: web.Application) -> AsyncIterator[None]:
    """Sharing state: a first flush (the other routers' workers, and their reqnum blocks), then
    one every `state_flush_s`, stopped on the way out. Not sharing: nothing."""
    sync = app.get(STATE_SYNC)
    if sync is None:
        yield
        return
    await sync.tick()
    try:
        async with _in_background(sync.run()):
            yield
    finally:
        await sync.close()


@contextlib.asynccontextmanager
async def store_unsaved_endpoints(app: web.Application) -> AsyncIterator[None]:
    """Every `UNSAVED_RETRY_S`, write the endpoint store if a change could not be (its request
    was answered 503: the disk was full), so that it survives a restart once the disk has room
    even if no other change comes; stopped on the way out."""
    async with _in_background(_store_when_possible(app[STORE])):
        yield


UNSAVED_RETRY_S = 5.0


async def _store_when_possible(store: EndpointStore, period_s: float = UNSAVED_RETRY_S) -> None:
    while True:
        await asyncio.sleep(period_s)
        if await store.save_if_unsaved():
            event(log, "endpoints_stored_late", logging.INFO, reason="the disk has room again")


@contextlib.asynccontextmanager
async def _in_background(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """`work` as a task while the block runs; cancelled, and awaited, on the way out."""
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


STEPS: tuple[Step, ...] = (
    connect_shared_state,
    load_endpoints,
    load_worker_identities,
    open_key_ring,
    start_reqnum_writer,
    build_route_service,
    rotate_keys_periodically,
    sync_shared_state,
    store_unsaved_endpoints,
)
"""The start-up, in order."""


def _ensure_bootstrap_endpoint(store: EndpointStore, settings: RouterSettings, now: float) -> bool:
    """The settings' endpoint (`default`) exists, with the settings' API key when one is set
    and the settings' `allow_private_workers`. True if that changed anything."""
    current = store.endpoints.get(settings.endpoint)
    key = settings.api_key
    private = settings.allow_private_workers
    if current is None:
        store.put_endpoint(
            Endpoint(
                name=settings.endpoint,
                api_key=key,
                created_at=now,
                allow_private_workers=private,
            )
        )
        return True
    update: dict[str, object] = {}
    if key.get_secret_value() and key.get_secret_value() != current.api_key.get_secret_value():
        update["api_key"] = SecretStr(key.get_secret_value())
    if current.allow_private_workers != private:
        update["allow_private_workers"] = private
    if update:
        store.put_endpoint(current.model_copy(update=update))
    return bool(update)


def _resume_high_water(settings: RouterSettings, now: float, submit: Submit) -> ReqnumHighWater:
    """Blocking (file I/O): start above everything a predecessor could have issued. Later
    blocks are written by `submit` (the writer thread), off the event loop."""
    file = ReqnumFile(settings.state_dir)
    start = max(file.load(), int(now * 1000))
    return ReqnumHighWater(
        start=start, persist=file.store, block=settings.reqnum_block, submit=submit
    )
