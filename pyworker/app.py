"""The PyWorker's aiohttp application: ticket checks at the door, then admission, then relay.

    POST /generate, /generate_stream, ...  {"auth_data": <ticket>, "payload": <TGI body>}
    GET  /ping, /health                     liveness, and whether the backend is serving
    GET  /metrics                           Prometheus text format

`create_app` only wires: the state (`pyworker.state`), the routes and the order of a request's
checks (`pyworker.routes`), the envelope (`pyworker.envelope`), and the lifetime: session,
bring-up, reports, drain (`pyworker.lifetime`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web

from httpedge.errors import error_middleware
from pyworker.admission import FifoGate
from pyworker.lifecycle import Lifecycle
from pyworker.lifetime import background_tasks, client_session, drain
from pyworker.load import LoadTracker
from pyworker.metrics import WorkerMetrics
from pyworker.routes import add_routes, count_error
from pyworker.settings import WorkerSettings
from pyworker.state import GATE, LIFECYCLE, LOAD, METRICS, ROUTER_CLOCK, SETTINGS, VERIFIER
from pyworker.tickets.router_clock import RouterClock
from pyworker.tickets.verifier import TicketVerifier

__all__ = ["create_app"]

log = logging.getLogger(__name__)

INITIAL_CONCURRENCY = 128  # until the backend's /info says otherwise (TGI's default)


def create_app(
    settings: WorkerSettings, *, clock: Callable[[], float] = time.time
) -> web.Application:
    errors = error_middleware(log, body_limit=settings.max_body_bytes, on_error=count_error)
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[errors])
    app[SETTINGS] = settings
    app[LIFECYCLE] = Lifecycle(clock=clock)
    app[LOAD] = LoadTracker(clock=clock)
    app[GATE] = FifoGate(settings.max_concurrency or INITIAL_CONCURRENCY)
    app[METRICS] = WorkerMetrics(app[LOAD], app[LIFECYCLE], lambda: app[GATE])
    app[ROUTER_CLOCK] = RouterClock(clock, skew_allowance_s=settings.clock_skew_s)
    app[VERIFIER] = TicketVerifier(
        settings.advertised_url,
        {},
        endpoint=settings.endpoint,
        clock=app[ROUTER_CLOCK].now,  # tickets' expiry is the router's time
        scheme=settings.ticket_scheme,
        clock_skew_s=settings.clock_skew_s,
        replay_window=settings.replay_window,
    )
    app.cleanup_ctx.append(client_session)
    app.cleanup_ctx.append(background_tasks)
    app.on_shutdown.append(drain)
    add_routes(app)
    return app
