"""The management API, `/api/v0/...`, guarded by the admin key.

    GET    /api/v0/endpoints/                 every endpoint (without API keys)
    POST   /api/v0/endpoints/                 create one; 201 with its API key (generated if absent)
    GET    /api/v0/endpoints/{name}           one endpoint (`?reveal_key=true` adds its API key)
    PATCH  /api/v0/endpoints/{name}           change the fields given (PUT: the same)
    DELETE /api/v0/endpoints/{name}           delete it, its worker groups, and its workers' records
    POST   /api/v0/endpoints/{name}/join-tokens  201 {"join_token", "endpoint", "worker_id",
                                              "expires_at"}: one worker registers with it, once
    GET    /api/v0/workergroups/              ... the same five for worker groups
    POST   /api/v0/keys/rotate                publish a new signing key; it signs after key_lead_s
    DELETE /api/v0/keys/{kid}                 revoke a key at once (a new one signs in its place
                                              when it signed now or later); 404 unknown, 409 done

Every change is persisted in the state directory before the answer goes out.
"""

from __future__ import annotations

import dataclasses
import logging

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from router.endpoints.models import (
    Endpoint,
    WorkerGroup,
    endpoint_from_body,
    worker_group_from_body,
)
from router.endpoints.store import EndpointStore
from router.errors import Conflict, EndpointNotFound, InvalidRequest, NotFound
from router.http.access import admin_only
from router.http.bodies import parse_model, read_json
from router.http.state import IDENTITIES, ROTATION, SERVICE
from router.keys.ring import AlreadyRevoked, UnknownKeyId
from router.logs import event

__all__ = ["add_management_routes"]

log = logging.getLogger(__name__)


def add_management_routes(app: web.Application) -> None:
    _add_collection(app, "/api/v0/endpoints/", _Endpoints())
    _add_collection(app, "/api/v0/workergroups/", _WorkerGroups())
    app.router.add_post("/api/v0/endpoints/{name}/join-tokens", admin_only(_join_token))
    app.router.add_post("/api/v0/keys/rotate", admin_only(_rotate_key))
    app.router.add_delete("/api/v0/keys/{kid}", admin_only(_revoke_key))


def _add_collection(
    app: web.Application, path: str, collection: _Endpoints | _WorkerGroups
) -> None:
    """GET `path` lists, POST `path` creates; GET `path{name}` reads one, PATCH or PUT changes
    the fields given, DELETE deletes it. Every route wants the admin key."""
    item = f"{path}{{name}}"
    app.router.add_get(path, admin_only(collection.list_all))
    app.router.add_post(path, admin_only(collection.create))
    app.router.add_get(item, admin_only(collection.get))
    app.router.add_patch(item, admin_only(collection.update))
    app.router.add_put(item, admin_only(collection.update))
    app.router.add_delete(item, admin_only(collection.delete))


def _store(request: web.Request) -> EndpointStore:
    return request.app[SERVICE].store


class _Endpoints:
    """/api/v0/endpoints/: the endpoints; deleting one deletes its worker groups too."""

    async def list_all(self, request: web.Request) -> web.Response:
        endpoints = _store(request).endpoints.values()
        return web.json_response({"endpoints": [endpoint.view() for endpoint in endpoints]})

    async def create(self, request: web.Request) -> web.Response:
        store = _store(request)
        endpoint = endpoint_from_body(await read_json(request))
        endpoint = endpoint.model_copy(update={"created_at": request.app[SERVICE].clock()})
        if endpoint.name in store.endpoints:
            raise Conflict(f"endpoint {endpoint.name!r} exists: update it with PATCH")
        store.put_endpoint(endpoint)
        await store.save()
        event(log, "endpoint_created", endpoint=endpoint.name)
        return web.json_response({"endpoint": endpoint.view(reveal_key=True)}, status=201)

    async def get(self, request: web.Request) -> web.Response:
        endpoint = self._endpoint(request)
        reveal = request.query.get("reveal_key", "").lower() in ("1", "true", "yes")
        return web.json_response({"endpoint": endpoint.view(reveal_key=reveal)})

    async def update(self, request: web.Request) -> web.Response:
        store, current = _store(request), self._endpoint(request)
        updated = endpoint_from_body(await read_json(request), current=current)
        store.put_endpoint(updated)
        await store.save()
        event(log, "endpoint_updated", endpoint=updated.name, state=updated.endpoint_state.value)
        return web.json_response({"endpoint": updated.view()})

    async def delete(self, request: web.Request) -> web.Response:
        service = request.app[SERVICE]
        endpoint = self._endpoint(request)
        groups = service.store.delete_endpoint(endpoint.name)
        service.registry.remove_endpoint(endpoint.name)
        service.capacity_changed(endpoint.name)
        identities = request.app[IDENTITIES]
        if identities.book.forget_endpoint(endpoint.name):
            await identities.save()
        await service.store.save()
        event(log, "endpoint_deleted", endpoint=endpoint.name)
        return web.json_response({"deleted": endpoint.name, "workergroups": groups})

    def _endpoint(self, request: web.Request) -> Endpoint:
        name = request.match_info["name"]
        endpoint = _store(request).endpoints.get(name)
        if endpoint is None:
            raise EndpointNotFound(f"no endpoint named {name!r}")
        return endpoint


class _WorkerGroups:
    """/api/v0/workergroups/: the worker groups, each of an endpoint that exists."""

    async def list_all(self, request: web.Request) -> web.Response:
        groups = _store(request).groups.values()
        return web.json_response({"workergroups": [group.view() for group in groups]})

    async def create(self, request: web.Request) -> web.Response:
        store = _store(request)
        group = worker_group_from_body(await read_json(request))
        if group.name in store.groups:
            raise Conflict(f"worker group {group.name!r} exists: update it with PATCH")
        _check_endpoint(store, group.endpoint)
        store.put_group(group)
        await store.save()
        event(log, "workergroup_created", group=group.name, endpoint=group.endpoint)
        return web.json_response({"workergroup": group.view()}, status=201)

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response({"workergroup": self._group(request).view()})

    async def update(self, request: web.Request) -> web.Response:
        store = _store(request)
        updated = worker_group_from_body(await read_json(request), current=self._group(request))
        _check_endpoint(store, updated.endpoint)
        store.put_group(updated)
        await store.save()
        event(log, "workergroup_updated", group=updated.name, endpoint=updated.endpoint)
        return web.json_response({"workergroup": updated.view()})

    async def delete(self, request: web.Request) -> web.Response:
        store, group = _store(request), self._group(request)
        store.delete_group(group.name)
        await store.save()
        event(log, "workergroup_deleted", group=group.name)
        return web.json_response({"deleted": group.name})

    def _group(self, request: web.Request) -> WorkerGroup:
        name = request.match_info["name"]
        group = _store(request).groups.get(name)
        if group is None:
            raise NotFound(f"no worker group named {name!r}")
        return group


def _check_endpoint(store: EndpointStore, name: str) -> None:
    if name not in store.endpoints:
        raise InvalidRequest(f"endpoint: no endpoint named {name!r}; create it first")


class JoinTokenRequest(BaseModel):
    """The body of `POST /api/v0/endpoints/{name}/join-tokens` (every field optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    worker_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="only this worker id may use it"
    )
    ttl_s: float | None = Field(
        default=None, gt=0.0, le=30 * 86_400.0, description="default: join_token_ttl_s"
    )


async def _join_token(request: web.Request) -> web.Response:
    """A one-time join token for the endpoint: a worker presents it on its first status report
    (TGIS_JOIN_TOKEN) and gets its own credential."""
    service = request.app[SERVICE]
    name = request.match_info["name"]
    if name not in service.store.endpoints:
        raise EndpointNotFound(f"no endpoint named {name!r}")
    body = await read_json(request) if request.can_read_body else {}
    asked: JoinTokenRequest = parse_model(JoinTokenRequest, body)
    ttl_s = asked.ttl_s or service.settings.join_token_ttl_s
    now = service.clock()
    token = await request.app[IDENTITIES].mint(
        name, now=now, ttl_s=ttl_s, worker_id=asked.worker_id
    )
    event(log, "join_token_created", endpoint=name, worker=asked.worker_id)
    answer = {
        "join_token": token,
        "endpoint": name,
        "worker_id": asked.worker_id,
        "expires_at": now + ttl_s,
    }
    return web.json_response(answer, status=201)


async def _rotate_key(request: web.Request) -> web.Response:
    rotated = await request.app[ROTATION].rotate()
    return web.json_response(dataclasses.asdict(rotated))


async def _revoke_key(request: web.Request) -> web.Response:
    kid = request.match_info["kid"]
    try:
        revoked = await request.app[ROTATION].revoke(kid)
    except UnknownKeyId:
        raise NotFound(f"no key {kid!r}: GET /keys lists the published ones") from None
    except AlreadyRevoked:
        raise Conflict(f"key {kid!r} is revoked already") from None
    return web.json_response(dataclasses.asdict(revoked))
