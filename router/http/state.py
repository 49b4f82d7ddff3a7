"""The router application's typed state: one `web.AppKey` per object the app holds.

`create_app` (`router.http.app`) sets the first group; the start-up steps
(`router.http.startup`) set the rest, in the order they run, so a handler finds every key set
once the app has started.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from aiohttp import web

from router.autoscaler.demand import DemandSignal
from router.endpoints.store import EndpointStore
from router.http.metrics import RouterMetrics
from router.identity.store import IdentityStore
from router.keys.reqnums import ReqnumHighWater
from router.keys.ring import KeyRing
from router.keys.rotation import KeyRotation
from router.routing.registry import WorkerRegistry
from router.routing.service import RouteService
from router.settings import RouterSettings
from router.state.shared import SharedState
from router.state.sync import StateSync

__all__ = [
    "ADMISSION",
    "CLOCK",
    "DEMAND",
    "HIGH_WATER",
    "IDENTITIES",
    "KEY_RING",
    "METRICS",
    "REGISTRY",
    "RNG",
    "ROTATION",
    "SERVICE",
    "SETTINGS",
    "SHARED_STATE",
    "STATE_SYNC",
    "STORE",
    "Admission",
]

Admission = Callable[[str], bool]

# -- set by create_app

SETTINGS = web.AppKey("settings", RouterSettings)
REGISTRY = web.AppKey("registry", WorkerRegistry)
STORE = web.AppKey("store", EndpointStore)
IDENTITIES = web.AppKey("identities", IdentityStore)
"""The workers' join tokens and credentials (loaded from the state directory at start-up)."""
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
RNG = web.AppKey("rng", random.Random)
DEMAND = web.AppKey("demand", DemandSignal)
ADMISSION: web.AppKey[Admission] = web.AppKey("admission")
"""Which worker ids may report when `accept_unknown_workers` is off (set it before start-up)."""

# -- set at start-up

KEY_RING = web.AppKey("key_ring", KeyRing)
"""Set by `create_app` when it is given a signing key; else loaded at start-up."""
HIGH_WATER = web.AppKey("high_water", ReqnumHighWater)
SERVICE = web.AppKey("service", RouteService)
METRICS = web.AppKey("metrics", RouterMetrics)
ROTATION = web.AppKey("key_rotation", KeyRotation)
SHARED_STATE: web.AppKey[SharedState] = web.AppKey("shared_state")
"""Set at start-up with `state_url` only: the store the routers share (`router.state`)."""
STATE_SYNC = web.AppKey("state_sync", StateSync)
"""Set with `SHARED_STATE`: this router's flushes to and from it."""
