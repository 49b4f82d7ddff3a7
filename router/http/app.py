"""The router's aiohttp application: `create_app` builds its objects and wires its routes.

POST /route/            a signed ticket, or Vast's "no worker yet" answer  `router.http.routes`
GET  /pubkey/, /keys    the keys that verify tickets                       `router.http.routes`
GET  /health            the router itself is up                            `router.http.routes`
POST /worker_status/    a worker's status report (and its registration)    `router.http.workers`
GET  /status, /ui       endpoints and their workers (admin key)            `router.http.status`
GET  /metrics           Prometheus metrics (here, or on metrics_address)   `router.http.status`
/api/v0/...             the management API (admin key)                `router.http.management`
/endpoints/{name}/...   gateway mode                                       `router.gateway.proxy`
Vast's client and PyWorker routes                                          `router.vast.routes`

Errors are the router's exceptions (`router.errors`), answered as JSON by `httpedge.errors`.
What needs the event loop or the state directory is made at start-up, by the steps of
`router.http.startup`. The typed keys to the app's objects are in `router.http.state`; those a
caller of `create_app` sets before start-up or reads after are here too. The routing itself is
`app[SERVICE]` (a `RouteService`, ready once the app has started):
`await app[SERVICE].issue_ticket(endpoint, cost, ...)`. The gateway and the Vast routes reach it
through `router.routing.backplane`, a thin adapter over it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from aiohttp import web

from httpedge.errors import error_middleware
from httpedge.openapi import add_openapi_route
from protocol import SigningKey
from router.autoscaler.demand import DemandSignal
from router.endpoints.store import EndpointStore
from router.gateway import proxy as gateway
from router.http.management import add_management_routes
from router.http.openapi import router_openapi
from router.http.routes import add_routes
from router.http.startup import router_lifetime
from router.http.state import (
    ADMISSION,
    CLOCK,
    DEMAND,
    HIGH_WATER,
    IDENTITIES,
    KEY_RING,
    REGISTRY,
    RNG,
    SERVICE,
    SETTINGS,
    STORE,
)
from router.http.status import add_status_routes
from router.http.workers import add_worker_routes
from router.identity.store import IdentityStore
from router.keys.ring import KeyRing, RingKey
from router.routing.registry import WorkerRegistry
from router.settings import RouterSettings
from router.vast import routes as vast_routes

__all__ = ["ADMISSION", "DEMAND", "IDENTITIES", "REGISTRY", "SERVICE", "STORE", "create_app"]

log = logging.getLogger(__name__)


def create_app(
    settings: RouterSettings,
    *,
    signing_key: SigningKey | None = None,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    demand: DemandSignal | None = None,
) -> web.Application:
    """The router for `settings`. `signing_key`: sign with this one key instead of the state
    directory's ring; `clock`, `rng`: time and randomness (tests set them); `demand`: the
    signal the autoscaler reads for the settings' endpoint."""
    errors = error_middleware(log, body_limit=settings.max_body_bytes)
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[errors])
    app[SETTINGS] = settings
    app[IDENTITIES] = identities = IdentityStore(settings.state_dir)
    app[REGISTRY] = WorkerRegistry(
        stale_after_s=settings.worker_stale_s,
        settle_s=settings.ticket_settle_s,
        reqnum_floor=lambda: _reqnum_floor(app),
        on_remove=identities.forget,
    )
    app[STORE] = EndpointStore(settings.state_dir)
    app[CLOCK] = clock
    app[RNG] = rng or random.Random()
    app[DEMAND] = demand if demand is not None else DemandSignal()
    app[ADMISSION] = lambda worker_id: True
    if signing_key is not None:
        ring = KeyRing([RingKey(signing_key.private_key, 0.0)], ttl_s=settings.ticket_ttl_s)
        app[KEY_RING] = ring
    app.cleanup_ctx.append(router_lifetime)
    add_routes(app)
    add_worker_routes(app)
    add_status_routes(app)
    add_management_routes(app)
    add_openapi_route(app, router_openapi())
    gateway.setup(app, settings)
    vast_routes.setup(app, settings)
    return app


def _reqnum_floor(app: web.Application) -> int:
    """Where a new worker's reqnums start: the high-water mark's floor once it is up, else now
    in milliseconds."""
    high_water = app.get(HIGH_WATER)
    return high_water.floor() if high_water is not None else int(app[CLOCK]() * 1000)
