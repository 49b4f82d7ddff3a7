"""The router's aiohttp app in process, over real sockets."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client.routing import interpret_route_answer
from protocol import (
    RouterStatus,
    SigningKey,
    Ticket,
    encode_route_answer,
    load_public_key,
    verify_ticket_signature,
)
from router.http.app import create_app
from router.http.state import SERVICE
from router.settings import RouterSettings
from tests import worker_identity as workers
from tests.clock import FakeClock
from tests.integration.router.routers import ClientFactory, router_settings

API_KEY = "test-api-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ADMIN_KEY = "test-admin-key"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def settings(tmp_path: Path, **overrides: Any) -> RouterSettings:
    fields = {"api_key": API_KEY, "admin_key": ADMIN_KEY, "route_timeout_s": 0.5}
    return router_settings(tmp_path, **{**fields, **overrides})


@pytest.fixture
async def client(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(settings(tmp_path)))


def worker_report(worker_id: str = "w1", **overrides: Any) -> dict[str, Any]:
    fields = {
        "id": worker_id,
        "url": f"http://{worker_id}.test:9",
        "state": "ready",
        "max_perf": 100.0,
        "in_flight_workload": 0.0,
    }
    return {**fields, **overrides}


async def report(client: TestClient[Any, Any], **overrides: Any) -> None:
    response = await workers.report(client, worker_report(**overrides))
    assert response.status == 200, await response.text()


async def test_keys_and_pubkey_publish_the_signing_key(client: TestClient[Any, Any]) -> None:
    keys = await (await client.get("/keys")).json()
    pem = await (await client.get("/pubkey/")).text()
    [published] = keys["keys"]
    assert published["public_key"] == pem
    assert published["alg"] == "Ed25519"


async def test_the_key_survives_a_restart(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    first = await (await (await aiohttp_client(create_app(settings(tmp_path)))).get("/keys")).json()
    again = await (await (await aiohttp_client(create_app(settings(tmp_path)))).get("/keys")).json()
    assert first == again


async def test_a_route_gets_a_ticket_the_published_key_verifies(
    client: TestClient[Any, Any],
) -> None:
    await report(client)
    response = await client.post("/route/", json={"endpoint": "default", "cost": 50}, headers=AUTH)
    assert response.status == 200
    ticket = await response.json()
    keys = await (await client.get("/keys")).json()
    public_key = load_public_key(keys["keys"][0]["public_key"])
    assert verify_ticket_signature(public_key, ticket)
    assert (ticket["url"], ticket["cost"], ticket["endpoint"]) == (
        worker_report()["url"],
        50,
        "default",
    )


async def test_the_api_key_may_come_in_the_body_as_vasts_client_sends_it(
    client: TestClient[Any, Any],
) -> None:
    await report(client)
    body = {"endpoint": "default", "cost": 5, "api_key": API_KEY}
    assert (await client.post("/route/", json=body)).status == 200


async def test_tickets_are_numbered_per_worker(client: TestClient[Any, Any]) -> None:
    await report(client)
    reqnums = []
    for _ in range(3):
        response = await client.post("/route/", json={"endpoint": "default"}, headers=AUTH)
        reqnums.append((await response.json())["reqnum"])
    assert reqnums == sorted(set(reqnums))
    assert reqnums[1] - reqnums[0] == 1


async def test_the_least_loaded_worker_gets_the_ticket(client: TestClient[Any, Any]) -> None:
    await report(client, worker_id="busy", in_flight_workload=1000)
    await report(client, worker_id="idle")
    response = await client.post("/route/", json={"endpoint": "default"}, headers=AUTH)
    assert (await response.json())["url"] == "http://idle.test:9"


async def test_issued_cost_counts_until_the_worker_reports(client: TestClient[Any, Any]) -> None:
    await report(client, worker_id="a")
    await report(client, worker_id="b")
    urls = set()
    for _ in range(2):
        body = {"endpoint": "default", "cost": 500}
        urls.add((await (await client.post("/route/", json=body, headers=AUTH)).json())["url"])
    assert len(urls) == 2  # the second ticket avoided the worker the first one loaded


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, {"endpoint": "default"}),
        ({"Authorization": "Bearer wrong"}, {"endpoint": "default"}),
        ({"Authorization": API_KEY}, {"endpoint": "default"}),
        ({}, {"endpoint": "default", "api_key": "wrong"}),
    ],
)
async def test_a_wrong_or_missing_api_key_is_401(
    client: TestClient[Any, Any], headers: dict[str, str], body: dict[str, Any]
) -> None:
    response = await client.post("/route/", json=body, headers=headers)
    assert response.status == 401
    assert (await response.json())["error_type"] == "unauthorized"


async def test_an_unknown_endpoint_is_404(client: TestClient[Any, Any]) -> None:
    response = await client.post("/route/", json={"endpoint": "nope"}, headers=AUTH)
    assert response.status == 404
    assert "nope" in (await response.json())["error"]


@pytest.mark.parametrize(
    "cost",
    [
        *("0", "-5", '"lots"', '"5"', "true", "null", "[1]", "1e12", "1000001"),
        *("NaN", "Infinity", "-Infinity", "1e999"),  # Python's json reads them; no finite cost
    ],
)
async def test_an_absurd_cost_is_422(client: TestClient[Any, Any], cost: str) -> None:
    raw = b'{"endpoint": "default", "cost": %s}' % cost.encode()
    response = await client.post("/route/", data=raw, headers=AUTH)
    assert response.status == 422
    assert "cost" in (await response.json())["error"]


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"",
        b"\xff\xfe",
        b"[1, 2",
        b"[" * 50_000,
        b'{"endpoint": "default", "cost": 1, "api_key": "\\ud800"}',
        b'{"endpoint": "default", "cost": NaN, "session": "\\udc00x"}',
    ],
)
async def test_malformed_json_is_400(client: TestClient[Any, Any], raw: bytes) -> None:
    response = await client.post("/route/", data=raw, headers=AUTH)
    assert response.status == 400
    assert (await response.json())["error_type"] == "bad_request"


async def test_a_key_header_that_is_not_utf8_is_401(client: TestClient[Any, Any]) -> None:
    body = b'{"endpoint": "default", "cost": 1}'
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(
        b"POST /route/ HTTP/1.1\r\nHost: router\r\nAuthorization: Bearer \xff\xfe\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        % len(body)
        + body
    )
    async with asyncio.timeout(10):
        answer = await reader.read()
    writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 ")
    assert json.loads(payload)["error_type"] == "unauthorized"


async def test_a_huge_body_is_413_json(client: TestClient[Any, Any]) -> None:
    response = await client.post("/route/", data=b"x" * 200_000, headers=AUTH)
    assert response.status == 413
    assert "error" in await response.json()


async def test_no_worker_answers_waiting_with_the_request_idx(client: TestClient[Any, Any]) -> None:
    await report(client, state="loading")
    body = {"endpoint": "default", "request_idx": 77}
    response = await client.post("/route/", json=body, headers=AUTH)
    assert response.status == 200
    assert await response.json() == {
        "endpoint": "default",
        "status": {"loading": 1},
        "request_idx": 77,
    }


async def test_a_waiting_route_gets_the_worker_that_becomes_ready(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(settings(tmp_path, route_timeout_s=5)))
    waiting = asyncio.create_task(
        client.post("/route/", json={"endpoint": "default"}, headers=AUTH)
    )
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await report(client)
    response = await asyncio.wait_for(waiting, 2)
    assert "url" in await response.json()


async def test_waiting_is_bounded(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, route_timeout_s=10, max_waiting_routes=2))
    client = await aiohttp_client(app)
    body = {"endpoint": "default"}
    waiting = [
        asyncio.create_task(client.post("/route/", json=body, headers=AUTH)) for _ in range(2)
    ]
    async with asyncio.timeout(10):
        while app[SERVICE].queue.waiting < 2:
            await asyncio.sleep(0.01)
    response = await client.post("/route/", json=body, headers=AUTH)
    assert response.status == 429
    assert response.headers["Retry-After"] == "10"
    await report(client)
    for task in waiting:
        assert "url" in await (await task).json()


async def test_status_reports_need_a_join_token_or_a_credential(
    client: TestClient[Any, Any],
) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}):
        response = await client.post("/worker_status/", json=worker_report(), headers=headers)
        assert response.status == 401
    status = await (await client.get("/status", headers=ADMIN)).json()
    assert status["endpoints"][0]["workers"] == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (worker_report(max_perf=-1), 422),
        (worker_report(state="dancing"), 422),
        ({"url": "x"}, 422),
        (worker_report(endpoint="other"), 404),
    ],
)
async def test_bad_status_reports_are_rejected(
    client: TestClient[Any, Any], body: dict[str, Any], status: int
) -> None:
    response = await workers.report(client, body)
    assert response.status == status


async def test_a_stopped_worker_leaves_rotation(client: TestClient[Any, Any]) -> None:
    await report(client)
    await report(client, state="stopped")
    status = await (await client.get("/status", headers=ADMIN)).json()
    assert status["endpoints"][0]["workers"] == []


async def test_an_injected_key_signs(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    key = SigningKey.generate()
    client = await aiohttp_client(create_app(settings(tmp_path), signing_key=key))
    await report(client)
    ticket = await (await client.post("/route/", json={"endpoint": "default"}, headers=AUTH)).json()
    assert ticket["kid"] == key.kid
    assert not list((tmp_path / "state").glob("*key*"))  # no key of its own was written


async def test_a_retry_avoids_the_worker_that_failed_while_another_is_ready(
    client: TestClient[Any, Any],
) -> None:
    await report(client, worker_id="failed")
    await report(client, worker_id="other", in_flight_workload=10_000)
    failed_url = worker_report("failed")["url"]
    body = {"endpoint": "default", "cost": 5, "avoid": [failed_url]}
    for _ in range(3):
        ticket = await (await client.post("/route/", json=body, headers=AUTH)).json()
        assert ticket["url"] == "http://other.test:9"  # even though it is far busier


async def test_avoiding_the_only_ready_worker_still_routes_to_it(
    client: TestClient[Any, Any],
) -> None:
    await report(client)
    body = {"endpoint": "default", "cost": 5, "avoid": [worker_report()["url"]]}
    ticket = await (await client.post("/route/", json=body, headers=AUTH)).json()
    assert ticket["url"] == worker_report()["url"]


@pytest.mark.parametrize("avoid", ["http://w", [1], ["u"] * 65])
async def test_a_malformed_avoid_list_is_422(client: TestClient[Any, Any], avoid: Any) -> None:
    body = {"endpoint": "default", "avoid": avoid}
    response = await client.post("/route/", json=body, headers=AUTH)
    assert response.status == 422
    assert "avoid" in (await response.json())["error"]


@pytest.mark.parametrize("request_idx", [-1, 2**63, 2**80, 1.5, "7", True])
async def test_a_bad_request_idx_is_422(client: TestClient[Any, Any], request_idx: Any) -> None:
    await report(client)
    body = {"endpoint": "default", "request_idx": request_idx}
    response = await client.post("/route/", json=body, headers=AUTH)
    assert response.status == 422
    assert "request_idx" in (await response.json())["error"]


NATIVE_TICKET = (
    b'{"cost":50,"endpoint":"default","reqnum":1000001,"url":"http://10.0.0.1:1","request_idx":2,'
    b'"exp":1062,"kid":"56475aa75463474c","epoch":"0f1e2d3c4b5a6978","signature":"mYezviMuBXQvBY'
    b'dnveLqtO/CgeUsgnmB1KPgE5IarMu9Ns7+rEtAXZ6wmWnMiPoHipKcWdAN57okF6I2I9E0CA=="}'
)


STATUS = (
    b'{"endpoints": [{"name": "default", "endpoint_state": "active", "max_workers": 16, '
    b'"waiting": 0, "workers": [{"id": "a", "url": "http://10.0.0.1:1", "state": "ready", '
    b'"max_perf": 100.0, "startup_perf": 0.0, "expected_load": 52.5, "pending_cost": 52.5, '
    b'"expected_wait_s": 0.525, '
    b'"error_msg": "", "last_report_age_s": 1.25}, {"id": "b", "url": "http://10.0.0.2:1", '
    b'"state": "error", "max_perf": 0.0, "startup_perf": 0.0, "expected_load": 3.0, '
    b'"pending_cost": 0.0, '
    b'"expected_wait_s": 3.0, "error_msg": "out of memory", "last_report_age_s": 1.25}]}], '
    b'"waiting": 0}'
)


async def test_route_answers_and_status_are_written_as_before_and_read_back_unchanged(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """The bytes a router wrote before its answers were typed (same key, clock and reports; the
    ticket has since gained the worker's `epoch`):
    a wait, a ticket that the client reads into a `Ticket` and posts back as it came, and the
    `/status` body, which reads into `RouterStatus` and writes back the same."""
    key = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
    clock = FakeClock()
    app = create_app(settings(tmp_path, route_timeout_s=0.05), signing_key=key, clock=clock)
    client = await aiohttp_client(app)
    route = {"endpoint": "default", "cost": 7}
    waiting = await (await client.post("/route/", json=route, headers=AUTH)).read()
    assert waiting == b'{"endpoint":"default","status":{},"request_idx":1}'
    await report(client, id="a", url="http://10.0.0.1:1", epoch="0f1e2d3c4b5a6978")
    failing = {"max_perf": 0.0, "error_msg": "out of memory", "in_flight_workload": 3}
    await report(client, id="b", url="http://10.0.0.2:1", **failing)
    clock.now += 1.25
    route = {"endpoint": "default", "cost": 50}
    answer = await (await client.post("/route/", json=route, headers=AUTH)).read()
    assert answer == NATIVE_TICKET
    ticket = interpret_route_answer(json.loads(answer))
    assert isinstance(ticket, Ticket)
    posted = json.dumps(ticket.worker_body({"inputs": "hi"})).encode()
    assert json.loads(posted)["auth_data"] == json.loads(NATIVE_TICKET)
    assert encode_route_answer(ticket) == NATIVE_TICKET
    route = {"endpoint": "default", "cost": 2.5}
    assert (await client.post("/route/", json=route, headers=AUTH)).status == 200
    status = await (await client.get("/status", headers=ADMIN)).read()
    assert status == STATUS
    assert json.dumps(RouterStatus.model_validate_json(status).model_dump()).encode() == STATUS
