"""Routing over HTTP: failures out of rotation, session affinity, waiting, tickets and keys,
worker admission, metrics and the status page."""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from protocol import RouteWaiting, Ticket, load_public_key, verify_ticket_signature
from protocol.vast_tickets import VastVariant, load_rsa_public_key, verify_vast_signature
from router.http.app import create_app
from router.http.state import ADMISSION, REGISTRY, SERVICE
from router.keys.reqnums import ReqnumFile
from router.settings import RouterSettings
from tests import worker_identity as workers
from tests.clock import FakeClock
from tests.integration.router.routers import ClientFactory, router_settings

API_KEY = "endpoint-key"
ADMIN_KEY = "admin-key"
WORKER_TOKEN = "worker-token"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def settings(tmp_path: Path, **overrides: Any) -> RouterSettings:
    keys = {"api_key": API_KEY, "admin_key": ADMIN_KEY}
    return router_settings(tmp_path, **{**keys, "key_lead_s": 0.0, **overrides})


@pytest.fixture
async def app(tmp_path: Path) -> web.Application:
    return create_app(settings(tmp_path))


@pytest.fixture
async def client(aiohttp_client: ClientFactory, app: web.Application) -> TestClient[Any, Any]:
    return await aiohttp_client(app)


class StartRouter(Protocol):
    async def __call__(
        self, *, clock: Callable[[], float] = time.time, **overrides: Any
    ) -> tuple[web.Application, TestClient[Any, Any]]: ...


@pytest.fixture
def start_router(aiohttp_client: ClientFactory, tmp_path: Path) -> StartRouter:
    """Starts a router with `settings(tmp_path, **overrides)` and `clock`; its app and a client.
    Each call starts another one on the same state directory, as a restart would."""

    async def start(
        *, clock: Callable[[], float] = time.time, **overrides: Any
    ) -> tuple[web.Application, TestClient[Any, Any]]:
        app = create_app(settings(tmp_path, **overrides), clock=clock)
        return app, await aiohttp_client(app)

    return start


def url_of(worker_id: str) -> str:
    return f"http://{worker_id}.test:9"


async def report(client: TestClient[Any, Any], worker_id: str, **fields: Any) -> Any:
    body = {"id": worker_id, "url": url_of(worker_id), "state": "ready", "max_perf": 100.0}
    return await workers.report(client, {**body, **fields})


async def ticket(client: TestClient[Any, Any], **body: Any) -> dict[str, Any]:
    response = await client.post("/route/", json={"endpoint": "default", **body}, headers=AUTH)
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


# -- out of rotation at once, back on recovery -------------------------------------------------


@pytest.mark.parametrize(
    "failure", [{"state": "error", "error_msg": "CUDA OOM"}, {"error_msg": "backend died"}]
)
async def test_a_worker_reporting_an_error_is_out_until_it_recovers(
    client: TestClient[Any, Any], failure: dict[str, Any]
) -> None:
    await report(client, "sick")
    await report(client, "well", in_flight_workload=5_000)
    await report(client, "sick", **failure)
    for _ in range(5):
        assert (await ticket(client))["url"] == url_of("well")
    await report(client, "sick")  # healthy again
    assert (await ticket(client))["url"] == url_of("sick")


async def test_a_worker_marked_failed_is_out_until_its_next_report(
    app: web.Application, client: TestClient[Any, Any]
) -> None:
    await report(client, "a")
    await report(client, "b", in_flight_workload=5_000)
    app[SERVICE].worker_failed(url_of("a"))
    assert (await ticket(client))["url"] == url_of("b")
    status = await (await client.get("/status", headers=ADMIN)).json()
    states = {w["id"]: w["state"] for w in status["endpoints"][0]["workers"]}
    assert states["a"] == "failed"
    await asyncio.sleep(0.01)
    await report(client, "a")
    assert (await ticket(client))["url"] == url_of("a")


async def test_a_worker_that_misses_its_reports_is_out(start_router: StartRouter) -> None:
    clock = FakeClock()
    _, client = await start_router(clock=clock, worker_stale_s=5)
    await report(client, "quiet")
    await report(client, "talker", in_flight_workload=5_000)
    clock.now += 4
    await report(client, "talker", in_flight_workload=5_000)
    assert (await ticket(client))["url"] == url_of("quiet")
    clock.now += 2  # quiet's last report is now 6 s old
    assert (await ticket(client))["url"] == url_of("talker")
    await report(client, "quiet")
    assert (await ticket(client))["url"] == url_of("quiet")


async def test_a_silent_worker_s_load_leaves_the_metrics(start_router: StartRouter) -> None:
    """A worker killed under load: once it is stale, neither its last reported load nor its
    tickets count in `/metrics` (before, they stayed: its report's load until it was removed)."""
    clock = FakeClock()
    _, client = await start_router(clock=clock, worker_stale_s=5)
    await report(client, "killed", in_flight_workload=30)
    await ticket(client, cost=12)
    text = await (await client.get("/metrics")).text()
    assert 'tgis_router_in_flight_load{endpoint="default"} 42.0' in text
    clock.now += 6
    text = await (await client.get("/metrics")).text()
    assert 'tgis_router_in_flight_load{endpoint="default"} 0.0' in text
    assert 'tgis_router_pending_ticket_cost{endpoint="default"} 0.0' in text


# -- session affinity ------------------------------------------------------------------------


async def test_a_session_sticks_to_its_worker_while_it_is_not_overloaded(
    client: TestClient[Any, Any],
) -> None:
    for worker_id in ("a", "b", "c"):
        await report(client, worker_id)
    first = (await ticket(client, session="s1", cost=100))["url"]
    for _ in range(4):  # 500 tokens at 100 tok/s = 5 s expected wait, under 10 s
        assert (await ticket(client, session="s1", cost=100))["url"] == first
    others = {(await ticket(client, cost=10))["url"] for _ in range(4)}
    assert first not in others  # sessionless traffic goes to the least loaded workers
    for _ in range(6):
        await ticket(client, session="s1", cost=100)  # past 10 s: the session moves
    assert (await ticket(client, session="s1", cost=100))["url"] != first


async def test_a_busy_sticky_worker_is_left(client: TestClient[Any, Any]) -> None:
    await report(client, "a")
    await report(client, "b")
    first = (await ticket(client, session="s", cost=1))["url"]
    worker_id = first.removeprefix("http://").split(".")[0]
    await report(client, worker_id, state="busy")
    assert (await ticket(client, session="s", cost=1))["url"] != first


@pytest.mark.parametrize("session", ["", 5, "x" * 257])
async def test_a_malformed_session_is_422(client: TestClient[Any, Any], session: Any) -> None:
    body = {"endpoint": "default", "session": session}
    response = await client.post("/route/", json=body, headers=AUTH)
    assert response.status == 422
    assert "session" in (await response.json())["error"]


# -- waiting for capacity --------------------------------------------------------------------


async def test_waiters_are_served_first_come_first_served(start_router: StartRouter) -> None:
    app, client = await start_router(route_timeout_s=10)
    tasks = []
    for index in range(5):
        tasks.append(
            asyncio.create_task(
                client.post(
                    "/route/",
                    json={"endpoint": "default", "request_idx": 100 + index},
                    headers=AUTH,
                )
            )
        )
        while app[SERVICE].queue.waiting < index + 1:
            await asyncio.sleep(0.005)
    await report(client, "w1")
    tickets = [await (await task).json() for task in tasks]
    reqnums = [t["reqnum"] for t in tickets]
    assert [t["request_idx"] for t in tickets] == list(range(100, 105))
    assert reqnums == sorted(reqnums)  # signed in arrival order
    assert app[SERVICE].queue.waiting == 0


async def test_a_flood_beyond_the_waiting_bound_is_429_and_memory_stays_bounded(
    start_router: StartRouter,
) -> None:
    app, client = await start_router(route_timeout_s=1, max_waiting_routes=8)
    body = {"endpoint": "default"}
    responses = await asyncio.gather(
        *[client.post("/route/", json=body, headers=AUTH) for _ in range(60)]
    )
    statuses = sorted(r.status for r in responses)
    assert statuses.count(200) == 8  # the waiters got Vast's "no worker yet" answer
    assert statuses.count(429) == 52
    refused = [r for r in responses if r.status == 429]
    assert all(r.headers["Retry-After"] == "1" for r in refused)
    assert app[SERVICE].queue.waiting == 0
    assert app[SERVICE].demand_for("default").waiting_requests == 0


async def test_retry_mode_answers_503_with_retry_after(start_router: StartRouter) -> None:
    _, client = await start_router(no_worker_reply="retry")
    response = await client.post(
        "/route/", json={"endpoint": "default", "request_idx": 9}, headers=AUTH
    )
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert "request_idx 9" in (await response.json())["error"]


async def test_waiting_tells_the_autoscaler(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, route_timeout_s=5))
    client = await aiohttp_client(app)
    waiting = asyncio.create_task(
        client.post("/route/", json={"endpoint": "default", "cost": 42}, headers=AUTH)
    )
    demand = app[SERVICE].demand_for("default")
    async with asyncio.timeout(5):
        await demand.wake.wait()
    assert (demand.waiting_requests, demand.waiting_tokens) == (1, 42)
    await report(client, "w1")
    assert "url" in await (await waiting).json()
    assert demand.waiting_requests == 0


# -- tickets and keys ------------------------------------------------------------------------


async def test_key_rotation_publishes_before_signing_and_keeps_the_old_key(
    start_router: StartRouter,
) -> None:
    clock = FakeClock(10_000.0)
    _, client = await start_router(clock=clock, key_lead_s=30, ticket_ttl_s=60)
    await report(client, "w1")
    old = (await ticket(client))["kid"]
    rotated = await (await client.post("/api/v0/keys/rotate", headers=ADMIN)).json()
    new = rotated["kid"]
    assert rotated == {"kid": new, "signs_from": 10_030.0, "published": [old, new]}
    kids = [k["kid"] for k in (await (await client.get("/keys")).json())["keys"]]
    assert kids == [old, new]  # published at once ...
    assert (await ticket(client))["kid"] == old  # ... but it does not sign yet
    clock.now += 31
    await report(client, "w1")
    signed = await ticket(client)
    assert signed["kid"] == new
    keys = {k["kid"]: k["public_key"] for k in (await (await client.get("/keys")).json())["keys"]}
    assert set(keys) == {old, new}  # the old key's tickets are still valid
    assert verify_ticket_signature(load_public_key(keys[new]), signed)
    clock.now += 60 + 30 + 1  # past the old key's last ticket's expiry and the skew allowance
    kids = [k["kid"] for k in (await (await client.get("/keys")).json())["keys"]]
    assert kids == [new]
    await client.close()
    _, restarted = await start_router(clock=clock)
    await report(restarted, "w1")
    assert (await ticket(restarted))["kid"] == new  # the rotation survived the restart


async def test_a_revoked_key_is_unpublished_at_once_and_for_good(
    start_router: StartRouter,
) -> None:
    clock = FakeClock(10_000.0)
    _, client = await start_router(clock=clock, key_lead_s=30, ticket_ttl_s=60)
    await report(client, "w1")
    only = (await ticket(client))["kid"]
    answer = await client.delete(f"/api/v0/keys/{only}", headers=ADMIN)
    assert answer.status == 200
    revoked = await answer.json()
    successor = revoked["successor"]
    assert revoked == {
        "kid": only,
        "successor": successor,
        "signing": successor,
        "published": [successor],
    }
    keys = {k["kid"]: k["public_key"] for k in (await (await client.get("/keys")).json())["keys"]}
    assert set(keys) == {successor}  # gone at once, not after the ticket ttl
    signed = await ticket(client)
    assert signed["kid"] == successor  # the successor signs at once, without a lead
    assert verify_ticket_signature(load_public_key(keys[successor]), signed)
    again = await client.delete(f"/api/v0/keys/{only}", headers=ADMIN)
    assert (again.status, (await again.json())["error_type"]) == (409, "conflict")
    unknown = await client.delete("/api/v0/keys/0123456789abcdef", headers=ADMIN)
    assert unknown.status == 404
    anonymous = await client.delete(f"/api/v0/keys/{successor}")
    assert anonymous.status == 401
    await client.close()
    _, restarted = await start_router(clock=clock)
    kids = [k["kid"] for k in (await (await restarted.get("/keys")).json())["keys"]]
    assert kids == [successor]  # the revocation survived the restart
    await report(restarted, "w1")
    assert (await ticket(restarted))["kid"] == successor


async def test_vast_scheme_signs_rsa_tickets_with_vasts_fields(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    for scheme, variant in (("vast", VastVariant.LEGACY), ("vast-url", VastVariant.URL)):
        app = create_app(settings(tmp_path / scheme, ticket_scheme=scheme))
        client = await aiohttp_client(app)
        await report(client, "w1")
        signed = await ticket(client, cost=100)
        public_key = load_rsa_public_key(await (await client.get("/pubkey/")).text())
        assert verify_vast_signature(public_key, signed, variant)
        assert set(signed) == {"cost", "endpoint", "reqnum", "url", "request_idx", "signature"}
        assert signed["cost"] == 100
        assert isinstance(signed["cost"], int)
        keys = (await (await client.get("/keys")).json())["keys"]
        assert [k["alg"] for k in keys] == ["RSA"]
        forged = {**signed, "cost": 1}
        if variant is VastVariant.LEGACY:
            assert not verify_vast_signature(public_key, forged, variant)


async def test_reqnums_keep_increasing_across_restarts(
    start_router: StartRouter, tmp_path: Path
) -> None:
    """Restarts after 7 tickets, at a block boundary (4 and 8 with blocks of 4), one past it,
    and before the first block is used up: every number is above all earlier ones, and each
    was below the ceiling on disk when it was handed out."""
    clock = FakeClock(5_000.0)  # it does not move: only the high-water mark can help
    file = ReqnumFile(tmp_path / "state")
    seen = []
    for count in (7, 4, 8, 5, 1, 4):
        _, client = await start_router(clock=clock, reqnum_block=4)
        await report(client, "w1")
        for _ in range(count):
            reqnum = (await ticket(client))["reqnum"]
            assert reqnum < await asyncio.to_thread(file.load)
            seen.append(reqnum)
        await client.close()
    assert seen == sorted(set(seen))


async def test_the_reqnum_ceiling_is_written_off_the_event_loop(
    start_router: StartRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that takes 0.8 s (the real one, with its syncs, takes about 10 ms here) leaves
    the event loop free: routes are answered and a 10 ms heartbeat keeps beating meanwhile,
    and the new ceiling is on disk before any number reaches the old one."""
    writes: list[int] = []
    store = ReqnumFile.store

    def slow_store(self: ReqnumFile, ceiling: int) -> None:
        if writes:  # the start-up write is not the one under test
            time.sleep(0.8)
        store(self, ceiling)
        writes.append(ceiling)

    monkeypatch.setattr(ReqnumFile, "store", slow_store)
    _, client = await start_router(reqnum_block=8)
    await report(client, "w1")
    file = ReqnumFile(tmp_path / "state")
    first_ceiling = await asyncio.to_thread(file.load)
    gaps = []

    async def heartbeat() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    beating = asyncio.create_task(heartbeat())
    try:
        reqnums = []
        for _ in range(7):  # past the point where the next block is reserved, not past the ceiling
            started = time.monotonic()
            reqnums.append((await ticket(client))["reqnum"])
            assert time.monotonic() - started < 0.4
        for _ in range(200):  # the write lands in its own time (counted once it has returned)
            if len(writes) == 2:
                break
            await asyncio.sleep(0.02)
    finally:
        beating.cancel()
    assert await asyncio.to_thread(file.load) > first_ceiling
    assert max(gaps) < 0.4
    assert len(writes) == 2  # the start's, and the next block's
    assert all(reqnum < first_ceiling for reqnum in reqnums)
    more = [(await ticket(client))["reqnum"] for _ in range(8)]  # into the new block
    assert reqnums + more == sorted(set(reqnums + more))
    ceiling = await asyncio.to_thread(file.load)
    assert all(reqnum < ceiling for reqnum in more)


async def test_an_unsigned_looking_ticket_field_is_not_trusted(
    client: TestClient[Any, Any],
) -> None:
    await report(client, "w1")
    signed = await ticket(client, cost=5)
    raw = base64.b64decode(signed["signature"])
    assert len(raw) == 64  # Ed25519 by default


# -- worker reports --------------------------------------------------------------------------


async def test_reports_from_workers_the_router_did_not_start_are_refused(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    app = create_app(settings(tmp_path, accept_unknown_workers=False))
    app[ADMISSION] = lambda worker_id: worker_id.startswith("worker-")
    client = await aiohttp_client(app)
    refused = await report(client, "intruder")
    assert refused.status == 403
    assert "not started by this router" in (await refused.json())["error"]
    assert (await report(client, "worker-1")).status == 200
    assert app[REGISTRY].get("intruder") is None


async def test_the_shared_worker_token_may_come_as_vasts_mtoken(
    start_router: StartRouter,
) -> None:
    _, client = await start_router(worker_token=WORKER_TOKEN, allow_anonymous_workers=True)
    body = {"id": 17, "url": url_of("17"), "max_perf": 50.0, "mtoken": WORKER_TOKEN}
    assert (await client.post("/worker_status/", json=body)).status == 200
    wrong = await client.post("/worker_status/", json={**body, "mtoken": "nope"})
    assert wrong.status == 401
    assert (await ticket(client))["url"] == url_of("17")  # a loaded Vast worker is ready


@pytest.mark.parametrize("raw", [b"{", b"", b"\xff", b"[1,"])
async def test_a_malformed_report_is_400(client: TestClient[Any, Any], raw: bytes) -> None:
    token = workers.join_token(client.app)
    response = await client.post("/worker_status/", data=raw, headers=workers.bearer(token))
    assert response.status == 400


# -- load accounting on every exit -------------------------------------------------------------


async def test_ticket_cost_is_returned_on_report_expiry_and_removal(
    start_router: StartRouter,
) -> None:
    clock = FakeClock()
    app, client = await start_router(clock=clock, ticket_ttl_s=30, ticket_settle_s=2)
    registry = app[REGISTRY]
    await report(client, "w1")
    await ticket(client, cost=100)
    assert registry.pending_total() == 100
    clock.now += 3
    await report(client, "w1", in_flight_workload=100)  # the worker has it: settled
    assert registry.pending_total() == 0
    await ticket(client, cost=50)
    clock.now += 31  # never used: it expires
    await report(client, "w2")  # a route request expires what is due
    await ticket(client, cost=1)
    assert registry.pending_total() == 1  # only the last ticket, on w2; w1 is stale
    await ticket(client, cost=70)
    await report(client, "w1", state="stopped")
    await report(client, "w2", state="stopped")
    assert registry.pending_total() == 0


# -- observability -----------------------------------------------------------------------------


async def test_a_route_that_fails_unexpectedly_is_a_500_and_is_counted(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    await report(client, "w1")
    assert client.app is not None

    async def refused(*args: Any, **kwargs: Any) -> Any:
        raise OSError("no space left on device")  # e.g. the reqnum ceiling could not be written

    monkeypatch.setattr(client.app[SERVICE], "issue_ticket", refused)
    response = await client.post("/route/", json={"endpoint": "default", "cost": 3}, headers=AUTH)
    assert response.status == 500
    assert (await response.json())["error_type"] == "internal"
    text = await (await client.get("/metrics")).text()
    assert 'tgis_router_routes_total{endpoint="default",outcome="internal"} 1.0' in text


async def test_metrics(client: TestClient[Any, Any]) -> None:
    await report(client, "w1", in_flight_workload=30)
    await report(client, "w2", state="loading")
    await ticket(client, cost=12)
    await client.post(
        "/route/", json={"endpoint": "default"}, headers={"Authorization": "Bearer x"}
    )
    await client.post("/route/", json={"endpoint": "nope"}, headers=AUTH)
    text = await (await client.get("/metrics")).text()
    assert 'tgis_router_routes_total{endpoint="default",outcome="ticket"} 1.0' in text
    assert 'tgis_router_routes_total{endpoint="default",outcome="unauthorized"} 1.0' in text
    assert 'tgis_router_routes_total{endpoint="",outcome="endpoint_not_found"} 1.0' in text
    assert "tgis_router_route_duration_seconds_count 3.0" in text
    assert 'tgis_router_in_flight_load{endpoint="default"} 42.0' in text
    assert 'tgis_router_workers{endpoint="default",state="ready"} 1.0' in text
    assert 'tgis_router_workers{endpoint="default",state="loading"} 1.0' in text
    assert "tgis_router_waiting_requests 0.0" in text


async def test_the_status_page_escapes_and_shows_workers(client: TestClient[Any, Any]) -> None:
    await report(client, "<script>w1</script>", url="http://x.test:9")
    response = await client.get("/ui", headers=ADMIN)
    assert response.content_type == "text/html"
    html = await response.text()
    assert "&lt;script&gt;w1&lt;/script&gt;" in html
    assert "<script>" not in html
    assert API_KEY not in html
    assert ADMIN_KEY not in html


# -- whatever a client sends ---------------------------------------------------------------------


def _mutations(rng: random.Random) -> list[Any]:
    values: list[Any] = [
        None, True, 0, -1, 1.5, 1e308, -1e308, 2**80, "", "x" * 300, "default", [], {}, [1, "a"],
        {"nested": {"deep": [None]}}, "\u0000", "\ud7ff", "\ud800", 100, 3.25,
    ]  # fmt: skip
    keys = ["endpoint", "cost", "request_idx", "avoid", "session", "api_key", "other"]
    bodies: list[Any] = [rng.choice(values) for _ in range(20)]
    for _ in range(200):
        body: dict[str, Any] = {"endpoint": "default", "cost": 10}
        for _ in range(rng.randint(1, 3)):
            body[rng.choice(keys)] = rng.choice(values)
        bodies.append(body)
    return bodies


async def test_no_body_crashes_the_router_or_leaks_load(
    app: web.Application, client: TestClient[Any, Any]
) -> None:
    await report(client, "w1")
    issued = 0.0
    for body in _mutations(random.Random(5)):
        response = await client.post("/route/", json=body, headers=AUTH)
        assert response.status in (200, 400, 401, 404, 422), (body, response.status)
        answer = await response.json()
        if response.status == 200:
            assert "url" in answer
            issued += answer["cost"]
        else:
            assert answer["error"]
            assert answer["error_type"]
    assert app[REGISTRY].pending_total() == pytest.approx(issued)
    await report(client, "w1", state="stopped")
    assert app[REGISTRY].pending_total() == 0
    assert app[SERVICE].queue.waiting == 0
    assert (await client.get("/health")).status == 200


# -- the service gateway mode calls ---------------------------------------------------------------


async def test_the_route_service_serves_callers_without_http(
    app: web.Application, client: TestClient[Any, Any]
) -> None:
    service = app[SERVICE]
    await report(client, "a")
    await report(client, "b", in_flight_workload=10_000)
    ticket = await service.issue_ticket("default", 5, avoid=[url_of("b")], strict_avoid=True)
    assert isinstance(ticket, Ticket)
    assert ticket.url == url_of("a")
    none_left = await service.issue_ticket(
        "default", 5, avoid=[url_of("a"), url_of("b")], strict_avoid=True, wait=False
    )
    assert isinstance(none_left, RouteWaiting)  # strict: never a worker it was told to avoid
    assert none_left.status == {"ready": 2}
    lenient = await service.issue_ticket("default", 5, avoid=[url_of("a"), url_of("b")])
    assert isinstance(lenient, Ticket)
    assert service.is_admin_key(ADMIN_KEY)
    assert not service.is_admin_key(API_KEY)
    assert [w.id for w in service.workers("default")] == ["a", "b"]


async def test_a_report_naming_no_endpoint_joins_the_routers_own(start_router: StartRouter) -> None:
    _, client = await start_router(endpoint="chat")
    body = {"id": 7, "url": url_of("7"), "max_perf": 80.0}  # as Vast's PyWorker sends it
    assert (await workers.report(client, body)).status == 200
    response = await client.post("/route/", json={"endpoint": "chat"}, headers=AUTH)
    assert (await response.json())["url"] == url_of("7")


async def test_request_idx_zero_is_a_new_request_as_vasts_client_sends_it(
    app: web.Application, client: TestClient[Any, Any]
) -> None:
    await report(client, "w1")
    demand = app[SERVICE].demand_for("default")
    first = await ticket(client, request_idx=0, cost=3)
    assert first["request_idx"] > 0
    assert demand.arrived_requests == 1
    again = await ticket(client, request_idx=first["request_idx"], cost=3)
    assert again["request_idx"] == first["request_idx"]
    assert demand.arrived_requests == 1  # a poll for the same request is not new demand


async def test_keys_rotate_by_themselves_when_asked_to(start_router: StartRouter) -> None:
    _, client = await start_router(key_rotation_s=0.2, key_lead_s=0)
    first = (await (await client.get("/keys")).json())["keys"]
    async with asyncio.timeout(10):
        while len((await (await client.get("/keys")).json())["keys"]) < 3:
            await asyncio.sleep(0.05)
    keys = (await (await client.get("/keys")).json())["keys"]
    assert keys[0]["kid"] == first[0]["kid"]  # the old ones stay published for their tickets
    assert await (await client.get("/pubkey/")).text() == keys[-1]["public_key"]
    await report(client, "w1")
    kid = (await ticket(client))["kid"]
    published = {k["kid"] for k in (await (await client.get("/keys")).json())["keys"]}
    assert kid in published
    assert kid != first[0]["kid"]


async def test_a_caller_may_wait_less_than_the_route_timeout(start_router: StartRouter) -> None:
    app, _ = await start_router(route_timeout_s=30)
    started = asyncio.get_running_loop().time()
    answer = await app[SERVICE].issue_ticket("default", 5, timeout_s=0.1)
    assert isinstance(answer, RouteWaiting)
    assert asyncio.get_running_loop().time() - started < 5
