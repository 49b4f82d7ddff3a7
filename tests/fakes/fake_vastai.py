"""A fake Vast.ai REST API (the parts the vastai provider uses), in memory, with the same wire
format: offers search, create from an ask, stop/start, destroy, list instances (v0, and v1 as
the current `vastai` client pages it), show one instance, create a template. It checks the
bearer key, records every request, and can be told to fail the next calls. Vast's own client
from PyPI runs against it in the tests, so the format is the real one, not our guess."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

__all__ = ["FakeVast", "create_fake_vast", "fake_vast_in_a_thread", "served_fake_vast"]


@dataclass
class FakeVast:
    api_key: str = "vast-key"
    offers: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"id": 11, "gpu_name": "RTX_4090", "dph_total": 0.45},
            {"id": 12, "gpu_name": "RTX_3090", "dph_total": 0.25},
        ]
    )
    instances: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    fail_next: int = 0
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(5000))


FAKE = web.AppKey("fake", FakeVast)


@asynccontextmanager
async def served_fake_vast(fake: FakeVast) -> AsyncIterator[str]:
    """`fake` served on 127.0.0.1 for the block; its base URL (no trailing slash)."""
    server = TestServer(create_fake_vast(fake), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@contextmanager
def fake_vast_in_a_thread(fake: FakeVast) -> Iterator[str]:
    """`fake` served on its own thread's event loop for the block; its base URL."""
    started, stop, urls = threading.Event(), threading.Event(), []

    async def serve() -> None:
        async with served_fake_vast(fake) as url:
            urls.append(url)
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(30), "the fake Vast API did not start"
    try:
        yield urls[0]
    finally:
        stop.set()
        thread.join(30)


def create_fake_vast(fake: FakeVast) -> web.Application:
    app = web.Application(middlewares=[_checks])
    app[FAKE] = fake
    app.router.add_post("/api/v0/bundles/", _search)
    app.router.add_put("/api/v0/asks/{offer}/", _create)
    app.router.add_get("/api/v0/instances/", _list)
    app.router.add_get("/api/v1/instances/", _list_v1)
    app.router.add_get("/api/v0/instances/{id}/", _show)
    app.router.add_put("/api/v0/instances/{id}/", _change)
    app.router.add_delete("/api/v0/instances/{id}/", _destroy)
    app.router.add_post("/api/v0/template/", _create_template)
    return app


@web.middleware
async def _checks(request: web.Request, handler: Any) -> web.StreamResponse:
    fake = request.app[FAKE]
    body = await request.json() if request.can_read_body else None
    fake.requests.append((request.method, request.path, body))
    if request.headers.get("Authorization") != f"Bearer {fake.api_key}":
        return web.json_response({"success": False, "error": "invalid_api_key"}, status=401)
    if fake.fail_next > 0:
        fake.fail_next -= 1
        return web.json_response({"success": False, "error": "server_error"}, status=500)
    response: web.StreamResponse = await handler(request)
    return response


async def _search(request: web.Request) -> web.Response:
    query = await request.json()
    offers = list(request.app[FAKE].offers)
    for column, direction in reversed(query.get("order") or []):
        offers.sort(key=lambda offer: offer.get(column, 0), reverse=direction == "desc")
    if "limit" in query:
        offers = offers[: int(query["limit"])]
    return web.json_response({"offers": offers})


async def _create(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    body = await request.json()
    offer = int(request.match_info["offer"])
    if offer not in {o["id"] for o in fake.offers}:
        return web.json_response({"success": False, "error": "no_such_ask"}, status=404)
    new_id = next(fake.ids)
    fake.instances[new_id] = {
        "id": new_id,
        "label": body.get("label"),
        "template_hash_id": body.get("template_hash_id"),
        "actual_status": "loading",
        "intended_status": "running",
        "public_ipaddr": "203.0.113.7",
        "ports": {"3000/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(40000 + new_id % 1000)}]},
        "start_date": time.time(),  # as Vast's: when the contract started
        "extra_env": [],
    }
    return web.json_response({"success": True, "new_contract": new_id})


async def _list(request: web.Request) -> web.Response:
    return web.json_response({"instances": list(request.app[FAKE].instances.values())})


async def _list_v1(request: web.Request) -> web.Response:
    instances = list(request.app[FAKE].instances.values())
    return web.json_response(
        {"instances": instances, "next_token": None, "total_instances": len(instances)}
    )


async def _show(request: web.Request) -> web.Response:
    instance = request.app[FAKE].instances.get(int(request.match_info["id"]))
    return web.json_response({"instances": instance})


async def _change(request: web.Request) -> web.Response:
    instance = request.app[FAKE].instances.get(int(request.match_info["id"]))
    if instance is None:
        return web.json_response({"success": False, "error": "no_such_instance"}, status=404)
    state = (await request.json()).get("state")
    instance["intended_status"] = state
    instance["actual_status"] = "running" if state == "running" else "exited"
    return web.json_response({"success": True})


async def _destroy(request: web.Request) -> web.Response:
    removed = request.app[FAKE].instances.pop(int(request.match_info["id"]), None)
    if removed is None:
        return web.json_response({"success": False, "error": "no_such_instance"}, status=404)
    return web.json_response({"success": True})


async def _create_template(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    template = await request.json()
    hash_id = f"tmpl{next(fake.ids)}"
    fake.templates[hash_id] = template
    return web.json_response({"success": True, "template": {"hash_id": hash_id, **template}})
