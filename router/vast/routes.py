"""The routes Vast.ai's own client and PyWorker (the `vastai` package) call, served by our router
so that both work against it unchanged (docs/vast.md):

    GET  /api/v0/endptjobs/         the endpoints a key may see, with their API keys (client)
    GET  /api/v0/endptjobs/{id}/    one of them (the client's refresh)
    POST /get_endpoint_workers/     {"id", "api_key"} → the endpoint's workers (client)
    POST /delete_requests/          requests that ended: their costs stop counting (PyWorker)
    GET  /static/jvastai_root.cer   the CA certificate the client should trust

`/route/`, `/pubkey/` and `/worker_status/` are the core's; this module gives them the three
Vast details they need: Vast's client waits at most 10 s for `/route/` (so the router answers
"waiting" sooner: `route_wait_s`), its PyWorker's reports have an integer id and no state (read
by `protocol.WorkerStatusReport`) and carry their token as `mtoken`
(`router.credentials.master_token`).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from router.credentials import bearer_token, master_token, same_secret
from router.errors import EndpointNotFound, InvalidRequest, NotFound, Unauthorized
from router.http.bodies import read_json_object
from router.http.state import CLOCK, IDENTITIES
from router.identity.speaker import AnonymousWorkers, check_release, identify
from router.routing.backplane import BACKPLANE, Backplane, EndpointView
from router.settings import RouterSettings
from router.vast.wire import endpoint_id, endpoint_record, worker_record

__all__ = ["VAST_SDK_AGENT", "route_wait_s", "setup"]

VAST_SDK_AGENT = "vastai-sdk/"
"""How Vast's client names itself in `User-Agent`."""


@dataclass(frozen=True)
class VastConfig:
    anonymous: AnonymousWorkers
    root_ca_file: Path | None


CONFIG = web.AppKey("vast_config", VastConfig)


def setup(app: web.Application, settings: RouterSettings) -> None:
    app[CONFIG] = VastConfig(
        anonymous=AnonymousWorkers.of(settings),
        root_ca_file=settings.vast_root_ca_file,
    )
    app.router.add_get("/api/v0/endptjobs/", list_endpoints)
    app.router.add_get("/api/v0/endptjobs/{id}/", get_endpoint)
    app.router.add_post("/get_endpoint_workers/", endpoint_workers)
    app.router.add_post("/delete_requests/", delete_requests)
    app.router.add_get("/static/jvastai_root.cer", root_certificate)


def route_wait_s(request: web.Request, settings: RouterSettings) -> float | None:
    """How long `/route/` may wait for a worker for this client: Vast's client gives up after
    10 s and then polls, so it gets `vast_route_wait_s` at most; None: the router's default."""
    if request.headers.get("User-Agent", "").startswith(VAST_SDK_AGENT):
        return min(settings.route_timeout_s, settings.vast_route_wait_s)
    return None


def _presented_key(request: web.Request) -> str:
    return bearer_token(request) or request.query.get("api_key", "")


def _visible(backplane: Backplane, presented: str) -> list[EndpointView]:
    """The endpoints a key may see: all for an admin key, else those whose key it is."""
    if not presented:
        raise Unauthorized("send your API key as `Authorization: Bearer <key>`")
    if backplane.is_admin_key(presented):
        return list(backplane.endpoints())
    visible = [e for e in backplane.endpoints() if same_secret(presented, e.api_key)]
    if not visible:
        raise Unauthorized("this API key is neither an endpoint's key nor the admin key")
    return visible


async def list_endpoints(request: web.Request) -> web.Response:
    visible = _visible(request.app[BACKPLANE], _presented_key(request))
    return web.json_response({"success": True, "results": [endpoint_record(e) for e in visible]})


async def get_endpoint(request: web.Request) -> web.Response:
    visible = _visible(request.app[BACKPLANE], _presented_key(request))
    wanted = request.match_info["id"]
    for endpoint in visible:
        if str(endpoint_id(endpoint.name)) == wanted:
            return web.json_response({"success": True, "result": endpoint_record(endpoint)})
    raise EndpointNotFound(f"no endpoint with id {wanted} for this key")


async def endpoint_workers(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    backplane = request.app[BACKPLANE]
    presented = body.get("api_key") if isinstance(body.get("api_key"), str) else ""
    visible = _visible(backplane, presented or _presented_key(request))
    for endpoint in visible:
        if body.get("id") == endpoint_id(endpoint.name):
            workers = backplane.workers(endpoint.name)
            return web.json_response([worker_record(worker) for worker in workers])
    raise EndpointNotFound(f"no endpoint with id {body.get('id')!r} for this key")


async def delete_requests(request: web.Request) -> web.Response:
    """Vast's PyWorker says which requests ended (finished, failed, rejected or cancelled):
    `{"worker_id", "mtoken", "requests": [{"request_idx", "success", "status", ...}]}`, about
    once a second. Each named request's ticket stops counting on that worker at once, through
    the core's exactly-once accounting, so its retry (or a report that settled the ticket
    first) returns nothing twice. Entries without an integer `request_idx` are acknowledged and
    skipped: the PyWorker only checks the status, and would resend a refused batch.

    It speaks for one worker (`router.identity.speaker`): with a worker's credential, only for
    that worker (403 for another); anonymously (the shared `mtoken`, behind
    `allow_anonymous_workers`), for any worker not registered with a credential."""
    body = await read_json_object(request)
    identities = request.app[IDENTITIES]
    presented = bearer_token(request) or master_token(body)
    now = request.app[CLOCK]()
    speaker = identify(identities.book, presented, request.app[CONFIG].anonymous, now)
    requests = body.get("requests", [])
    if not isinstance(requests, list):
        raise InvalidRequest("`requests` must be a list of {request_idx, status, ...} objects")
    worker_id = body.get("worker_id")
    released = 0
    if _is_int(worker_id) or (isinstance(worker_id, str) and worker_id):
        check_release(speaker, identities.book, str(worker_id))
        request_idxs = [
            entry["request_idx"]
            for entry in requests
            if isinstance(entry, dict) and _is_int(entry.get("request_idx"))
        ]
        released = request.app[BACKPLANE].requests_ended(str(worker_id), request_idxs)
    return web.json_response({"accepted": len(requests), "released": released})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


async def root_certificate(request: web.Request) -> web.Response:
    body = await asyncio.to_thread(_ca_certificate, request.app[CONFIG].root_ca_file)
    if body is None:
        raise NotFound("no CA certificate configured: set TGIS_VAST_ROOT_CA")
    return web.Response(body=body, content_type="application/x-x509-ca-cert")


def _ca_certificate(configured: Path | None) -> bytes | None:
    """Blocking (file I/O): the configured CA certificate, else the system's CA bundle (with no
    CA of its own, Vast's client trusts what the system does); None when there is neither."""
    if configured is not None:
        return configured.read_bytes()
    cafile = ssl.get_default_verify_paths().cafile
    return Path(cafile).read_bytes() if cafile and Path(cafile).is_file() else None
