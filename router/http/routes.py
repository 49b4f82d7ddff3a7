"""What clients and workers ask the router for: a ticket, the keys that verify it, its health.

POST /route/    {"endpoint", "cost", "request_idx"?, "avoid"?, "session"?} + API key
                → a signed ticket, or Vast's "no worker yet" answer after a bounded wait
GET  /pubkey/   the newest public key, PEM (where Vast's PyWorker looks)
GET  /keys      every key whose tickets workers should accept, with its kid
GET  /health    the router itself is up

The routing is `RouteService.issue_ticket` (`router.routing.service`); this module reads the
request, counts the outcome in the metrics and writes the answer.
"""

from __future__ import annotations

import time

from aiohttp import web

from protocol import KeySet, PublishedKey, Ticket, encode_route_answer
from protocol.errors import as_service_error
from router.credentials import bearer_token
from router.http.bodies import read_json, route_args
from router.http.state import CLOCK, KEY_RING, METRICS, SERVICE, SETTINGS
from router.keys.ring import RingKey
from router.vast import routes as vast_routes

__all__ = ["add_routes"]


def add_routes(app: web.Application) -> None:
    app.router.add_post("/route/", route)
    app.router.add_get("/pubkey/", pubkey)
    app.router.add_get("/keys", keys)
    app.router.add_get("/health", health)


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
            timeout_s=vast_routes.route_wait_s(request, app[SETTINGS]),
        )
    except Exception as exc:  # counted by the type it is answered with, then answered
        error_type = as_service_error(exc).error_type
        app[METRICS].route_done(label, error_type, time.perf_counter() - started)
        raise
    outcome = "ticket" if isinstance(answer, Ticket) else "waiting"
    app[METRICS].route_done(label, outcome, time.perf_counter() - started)
    return web.Response(body=encode_route_answer(answer), content_type="application/json")


async def pubkey(request: web.Request) -> web.Response:
    newest = _published(request.app)[-1]
    return web.Response(text=newest.public_pem, content_type="application/x-pem-file")


async def keys(request: web.Request) -> web.Response:
    published = [
        PublishedKey(kid=key.kid, alg=key.alg.value, public_key=key.public_pem)
        for key in _published(request.app)
    ]
    return web.json_response(KeySet(keys=published).model_dump())


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _published(app: web.Application) -> list[RingKey]:
    return app[KEY_RING].published(app[CLOCK]())
