"""The PyWorker application's typed keys: what its routes and its lifetime share."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from pyworker.admission import FifoGate
from pyworker.lifecycle import Lifecycle
from pyworker.load import LoadTracker
from pyworker.metrics import WorkerMetrics
from pyworker.relay import Relay
from pyworker.reporter import StatusReporter
from pyworker.settings import WorkerSettings
from pyworker.tickets.keys import KeyRefresher
from pyworker.tickets.router_clock import RouterClock
from pyworker.tickets.verifier import TicketVerifier

__all__ = [
    "GATE",
    "LIFECYCLE",
    "LOAD",
    "METRICS",
    "REFRESHER",
    "RELAY",
    "REPORTER",
    "ROUTER_CLOCK",
    "SESSION",
    "SETTINGS",
    "VERIFIER",
]

SETTINGS = web.AppKey("settings", WorkerSettings)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
LOAD = web.AppKey("load", LoadTracker)
VERIFIER = web.AppKey("verifier", TicketVerifier)
ROUTER_CLOCK = web.AppKey("router_clock", RouterClock)
REFRESHER = web.AppKey("refresher", KeyRefresher)
GATE = web.AppKey("gate", FifoGate)
METRICS = web.AppKey("metrics", WorkerMetrics)
SESSION = web.AppKey("session", aiohttp.ClientSession)
RELAY = web.AppKey("relay", Relay)
REPORTER = web.AppKey("reporter", StatusReporter)
