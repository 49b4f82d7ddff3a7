"""Two and three routers on one real Redis serve one fleet: workers reported to one are routed
to by all, with reqnums no two tickets share, one in-flight load, one key ring, one set of
endpoints, and waiting requests woken by any router. Each test flushes (`StateSync.tick`)
where a router would within `state_flush_s`, so nothing waits on a timer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from protocol import load_public_key
from pyworker.errors import TicketRejected
from pyworker.tickets.verifier import TicketVerifier
from router.http.app import create_app
from router.http.state import KEY_RING, REGISTRY, STATE_SYNC, STORE
from router.settings import RouterSettings
from tests.integration.router.routers import ClientFactory, router_settings
from tests.redis_server import RedisServer

API_KEY = "endpoint-key"
ADMIN_KEY = "admin-key"
SECRET = "a-state-secret-of-32-characters!"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}

Client = TestClient[Any, Any]
StartRouters = Callable[..., Awaitable[list[Client]]]


def settings(tmp_path: Path, url: str, **overrides: Any) -> RouterSettings:
    fields = {
        "api_key": API_KEY,
        "admin_key": ADMIN_KEY,
        "allow_anonymous_workers": True,
        "state_url": url,
        "state_secret": SECRET,
        "key_lead_s": 0.0,
    }
    return router_settings(tmp_path, **{**fields, **overrides})


@pytest.fixture
def start_routers(
    aiohttp_client: ClientFactory, tmp_path: Path, redis_server: RedisServer
) -> StartRouters:
    """`count` routers on the test's Redis, each with a state directory of its own."""

    async def start(count: int, **overrides: Any) -> list[Client]:
        clients = []
        for index in range(count):
            directory = tmp_path / f"router{index}"
            app = create_app(settings(directory, redis_server.url, **overrides))
            clients.append(await aiohttp_client(app))
        return clients

    return start


def app_of(client: Client) -> web.Application:
    app = client.app
    assert isinstance(app, web.Application)
    return app


async def flush(*clients: Client) -> None:
    for client in clients:
        await app_of(client)[STATE_SYNC].tick()


def url_of(worker_id: str) -> str:
    return f"http://{worker_id}.test:9"


async def report(client: Client, worker_id: str, **fields: Any) -> None:
    body = {"id": worker_id, "url": url_of(worker_id), "state": "ready", "max_perf": 100.0}
    response = await client.post("/worker_status/", json={**body, **fields})
    assert response.status == 200, await response.text()


async def route(client: Client, cost: float = 1.0) -> dict[str, Any]:
    response = await client.post(
        "/route/", json={"endpoint": "default", "cost": cost}, headers=AUTH
    )
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def verifier_for(client: Client, worker_id: str) -> TicketVerifier:
    """The checks the worker's PyWorker runs, with the keys the router publishes, and the
    epoch the worker's reports named (none: the verifier's epoch is sent in the reports)."""
    keys = (await (await client.get("/keys")).json())["keys"]
    published = {key["kid"]: load_public_key(key["public_key"]) for key in keys}
    return TicketVerifier(url_of(worker_id), published, endpoint="default", clock=time.time)


async def test_a_worker_reported_to_one_router_is_routed_to_by_the_others(
    start_routers: StartRouters,
) -> None:
    first, second, third = await start_routers(3)
    await report(first, "w1")
    await flush(first, second, third)
    for client in (second, third):
        ticket = await route(client)
        assert ticket["url"] == url_of("w1")


async def test_reqnums_are_unique_across_routers_and_every_ticket_is_accepted_once(
    start_routers: StartRouters,
) -> None:
    routers = await start_routers(3, state_reqnum_block=4)
    verifier = await verifier_for(routers[0], "w1")
    await report(routers[0], "w1", epoch=verifier.epoch)
    await flush(*routers)
    tickets = []
    for round_ in range(30):
        answers = await asyncio.gather(*[route(client) for client in routers])
        tickets.extend(answers)
        if round_ % 7 == 0:
            await flush(*routers)
    reqnums = [ticket["reqnum"] for ticket in tickets]
    assert len(reqnums) == len(set(reqnums)) == 90
    for ticket in tickets:
        verifier.verify(ticket, 1.0)  # raises TicketRejected on a replayed or too old reqnum
    with pytest.raises(TicketRejected):
        verifier.verify(tickets[0], 1.0)


async def test_in_flight_load_counted_by_one_router_steers_the_others(
    start_routers: StartRouters,
) -> None:
    first, second = await start_routers(2)
    await report(first, "w1")
    await report(first, "w2")
    await flush(first, second)
    busy = (await route(first, cost=5000.0))["url"]
    await flush(first, second)
    for _ in range(5):
        assert (await route(second))["url"] != busy
    worker_id = busy.removeprefix("http://").split(".")[0]
    assert app_of(second)[REGISTRY].get(worker_id).remote_workload == 5000.0  # type: ignore[union-attr]


async def test_a_request_waiting_on_one_router_is_woken_by_a_worker_on_another(
    start_routers: StartRouters,
) -> None:
    first, second = await start_routers(2, route_timeout_s=20.0)
    waiting = asyncio.create_task(route(second))
    deadline = time.monotonic() + 10
    while not waiting.done() and time.monotonic() < deadline:
        await report(first, "w1")
        await flush(first, second)
        await asyncio.sleep(0.05)
    answer = await asyncio.wait_for(waiting, 10)
    assert answer["url"] == url_of("w1")


async def test_an_endpoint_created_on_one_router_serves_on_the_other(
    start_routers: StartRouters,
) -> None:
    first, second = await start_routers(2)
    created = await first.post(
        "/api/v0/endpoints/", json={"name": "chat", "api_key": "chat-key"}, headers=ADMIN
    )
    assert created.status in (200, 201), await created.text()
    await flush(first, second)
    assert "chat" in app_of(second)[STORE].endpoints
    await report(second, "w9", endpoint="chat")
    await flush(second, first)
    response = await first.post(
        "/route/",
        json={"endpoint": "chat", "cost": 1},
        headers={"Authorization": "Bearer chat-key"},
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["url"] == url_of("w9")


async def test_a_key_rotated_on_one_router_signs_on_every_router(
    start_routers: StartRouters,
) -> None:
    first, second = await start_routers(2)
    assert app_of(first)[KEY_RING].keys[0].kid == app_of(second)[KEY_RING].keys[0].kid
    rotated = await first.post("/api/v0/keys/rotate", headers=ADMIN)
    assert rotated.status == 200, await rotated.text()
    kid = (await rotated.json())["kid"]
    await flush(second)
    await report(first, "w1")
    await flush(first, second)
    assert (await route(second))["kid"] == kid
    published = [key["kid"] for key in (await (await second.get("/keys")).json())["keys"]]
    assert kid in published


async def test_routers_serve_through_a_redis_restart_and_reconcile(
    start_routers: StartRouters, redis_server: RedisServer
) -> None:
    """Redis goes away (SIGKILL, no persistence) under load and comes back empty: the routers
    keep issuing tickets from the blocks they hold, then put the ring and endpoints back, and
    no reqnum is ever issued twice."""
    first, second = await start_routers(2, state_reqnum_block=64)
    verifier = await verifier_for(first, "w1")
    await report(first, "w1", epoch=verifier.epoch)
    await flush(first, second)
    tickets = [await route(client) for client in (first, second) for _ in range(5)]
    kid = app_of(first)[KEY_RING].signing_key(time.time()).kid

    redis_server.stop(kill=True)
    await flush(first, second)  # each router finds Redis away
    assert not app_of(first)[STATE_SYNC].available
    tickets += [await route(client) for client in (first, second) for _ in range(5)]

    redis_server.start()  # empty: no persistence
    await flush(first, second)
    await flush(first, second)
    assert app_of(first)[STATE_SYNC].available
    await report(first, "w1", epoch=verifier.epoch)
    await flush(first, second)
    tickets += [await route(client) for client in (first, second) for _ in range(5)]
    reqnums = [ticket["reqnum"] for ticket in tickets]
    assert len(set(reqnums)) == len(reqnums) == 30
    for ticket in tickets:
        verifier.verify(ticket, 1.0)
    assert app_of(second)[KEY_RING].signing_key(time.time()).kid == kid
    stored = await app_of(second)[STATE_SYNC].state.get_resources()
    assert "default" in stored.endpoints


async def test_changes_made_while_redis_is_away_reach_the_others_when_it_returns(
    start_routers: StartRouters, redis_server: RedisServer
) -> None:
    first, second = await start_routers(2)
    redis_server.stop(kill=True)
    created = await first.post(
        "/api/v0/endpoints/", json={"name": "late", "api_key": "late-key"}, headers=ADMIN
    )
    assert created.status == 503  # made here; shared once Redis is back
    assert "late" in app_of(first)[STORE].endpoints
    rotated = await first.post("/api/v0/keys/rotate", headers=ADMIN)
    assert rotated.status == 503
    redis_server.start()
    await flush(first, second)
    await flush(second)
    for name, client in (("first", first), ("second", second)):  # nothing else lost either
        assert {"default", "late"} <= app_of(client)[STORE].endpoints.keys(), name
