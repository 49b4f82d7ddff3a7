"""Worker identity at the router: join tokens, per-worker credentials, and what a worker may
say. Each test is a way one worker could speak for another, or a stranger for any, before."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from router.http.app import REGISTRY, create_app
from router.identity.store import IDENTITIES_FILE
from router.settings import RouterSettings
from tests import worker_identity as workers
from tests.clock import FakeClock
from tests.integration.router.routers import ClientFactory, router_settings

API_KEY = "identity-api-key"
ADMIN_KEY = "identity-admin-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def settings(tmp_path: Path, **overrides: Any) -> RouterSettings:
    return router_settings(tmp_path, **{"api_key": API_KEY, "admin_key": ADMIN_KEY, **overrides})


def body(worker_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": worker_id, "url": f"http://{worker_id}.test:9", "state": "ready", **fields}


async def post(client: TestClient[Any, Any], report: dict[str, Any], secret: str) -> Any:
    return await client.post("/worker_status/", json=report, headers=workers.bearer(secret))


async def error(response: Any) -> str:
    answer = await response.json()
    return str(answer["error"])


@pytest.fixture
async def client(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(settings(tmp_path)))


async def test_a_report_without_a_join_token_or_credential_is_refused_by_default(
    client: TestClient[Any, Any],
) -> None:
    for headers in ({}, {"Authorization": "Bearer anything"}):
        response = await client.post("/worker_status/", json=body("w1"), headers=headers)
        assert response.status == 401
        assert "TGIS_JOIN_TOKEN" in await error(response)
    assert client.app is not None
    assert client.app[REGISTRY].get("w1") is None


async def test_a_join_token_registers_one_worker_and_answers_its_credential(
    client: TestClient[Any, Any],
) -> None:
    assert client.app is not None
    token = workers.join_token(client.app)
    response = await post(client, body("w1"), token)
    answer = await response.json()
    assert response.status == 200
    assert set(answer) == {"accepted", "credential"}
    assert answer["credential"].startswith("tgis-worker-")
    again = await post(client, body("w1", max_perf=5.0), answer["credential"])
    assert (again.status, await again.json()) == (200, {"accepted": True})
    reused = await post(client, body("w2"), token)  # a join token is good once
    assert reused.status == 401
    assert "used" in await error(reused)


async def test_a_join_token_expires(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    clock = FakeClock()
    app = create_app(settings(tmp_path, join_token_ttl_s=60), clock=clock)
    client = await aiohttp_client(app)
    joined = await client.post("/api/v0/endpoints/default/join-tokens", headers=ADMIN)
    assert joined.status == 201
    answer = await joined.json()
    assert (answer["endpoint"], answer["expires_at"]) == ("default", clock.now + 60)
    clock.now += 61
    response = await post(client, body("w1"), answer["join_token"])
    assert response.status == 401
    assert "expired" in await error(response)


async def test_a_worker_may_speak_only_for_itself(client: TestClient[Any, Any]) -> None:
    """A's credential names B's id, moves A's url or endpoint, or stops B: each is refused,
    and B keeps its url and its place."""
    await workers.report(client, body("b"))
    assert client.app is not None
    await workers.report(client, body("a"))
    a = workers.credential(client.app, "a")
    cases = [
        (body("b", url="http://evil.test:9"), "credential is worker 'a'"),
        (body("b", state="stopped"), "credential is worker 'a'"),
        (body("a", url="http://evil.test:9"), "registered at url 'http://a.test:9'"),
        (body("a", endpoint="other"), "registered on endpoint 'default'"),
    ]
    for report, reason in cases:
        response = await post(client, report, a)
        assert response.status == 403
        assert reason in await error(response)
    b = client.app[REGISTRY].get("b")
    assert b is not None
    assert (b.url, b.state.value) == ("http://b.test:9", "ready")
    route = {"endpoint": "default", "cost": 1}
    ticket = await (await client.post("/route/", json=route, headers=AUTH)).json()
    assert ticket["url"] in ("http://a.test:9", "http://b.test:9")


async def test_a_join_token_is_for_its_endpoint_and_its_worker(
    client: TestClient[Any, Any],
) -> None:
    assert client.app is not None
    await workers.report(client, body("b"))
    for token, report, reason in [
        (workers.join_token(client.app), body("b"), "registered already"),
        (workers.join_token(client.app, worker_id="c"), body("d"), "for worker 'c'"),
        (workers.join_token(client.app, "other"), body("e"), "for endpoint 'other'"),
    ]:
        response = await post(client, report, token)
        assert response.status == 403
        assert reason in await error(response)
    assert client.app[REGISTRY].get("b") is not None
    b = workers.credential(client.app, "b")
    assert (await post(client, body("b"), b)).status == 200  # b is still b


async def test_delete_requests_frees_only_the_speakers_own_load(
    client: TestClient[Any, Any],
) -> None:
    assert client.app is not None
    await workers.report(client, body("a"))
    registry = client.app[REGISTRY]
    route = {"endpoint": "default", "cost": 9, "request_idx": 0}
    ticket = await (await client.post("/route/", json=route, headers=AUTH)).json()
    await workers.report(client, body("b"))
    b = workers.credential(client.app, "b")
    ended = {"worker_id": "a", "requests": [{"request_idx": ticket["request_idx"]}]}
    spoofed = await client.post("/delete_requests/", json=ended, headers=workers.bearer(b))
    assert spoofed.status == 403
    assert registry.pending_total() == 9
    anonymous = await client.post("/delete_requests/", json=ended)
    assert anonymous.status == 401
    a = workers.bearer(workers.credential(client.app, "a"))
    own = await client.post("/delete_requests/", json=ended, headers=a)
    assert (own.status, (await own.json())["released"]) == (200, 1)
    assert registry.pending_total() == 0


async def test_the_registry_is_bounded_per_endpoint(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(settings(tmp_path, max_workers_per_endpoint=2)))
    for worker_id in ("w1", "w2"):
        assert (await workers.report(client, body(worker_id))).status == 200
    refused = await workers.report(client, body("w3"))
    assert refused.status == 403
    assert "TGIS_MAX_WORKERS_PER_ENDPOINT" in await error(refused)
    assert (await workers.report(client, body("w1", state="stopped"))).status == 200
    assert (await workers.report(client, body("w3"))).status == 200  # a place came free


async def test_anonymous_workers_are_bounded_too_and_never_speak_for_a_registered_one(
    aiohttp_client: ClientFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fields = {"allow_anonymous_workers": True, "max_workers_per_endpoint": 2}
    client = await aiohttp_client(create_app(settings(tmp_path, **fields)))
    [warning] = [r for r in caplog.records if "anonymous_workers_allowed" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    await workers.report(client, body("registered"))
    anonymous = await client.post("/worker_status/", json=body("v1"))
    assert anonymous.status == 200
    for report in (
        body("registered", url="http://evil.test:9"),
        body("registered", state="stopped"),
    ):
        response = await client.post("/worker_status/", json=report)
        assert response.status == 403
        assert "its own credential" in await error(response)
    full = await client.post("/worker_status/", json=body("v2"))
    assert full.status == 403


@pytest.mark.parametrize(
    "url",
    [
        "http://w.test:9/path",
        "http://w.test:9?",
        "http://w.test:9#",
        "http://user@w.test:9",
        "ftp://w.test:9",
        "http://127.0.0.1:9",
        "http://localhost:9",
        "http://10.1.2.3:9",
        "http://169.254.169.254",
        "http://[::1]:9",
        "http://0x7f000001:9",
    ],
)
async def test_a_worker_url_is_scheme_host_and_port_on_a_public_address(
    aiohttp_client: ClientFactory, tmp_path: Path, url: str
) -> None:
    app = create_app(settings(tmp_path, allow_private_workers=False))
    client = await aiohttp_client(app)
    response = await post(client, body("w1", url=url), workers.join_token(app))
    assert response.status == 422
    assert "worker url" in await error(response)
    assert app[REGISTRY].get("w1") is None


async def test_an_endpoint_may_allow_private_workers(client: TestClient[Any, Any]) -> None:
    created = await client.post(
        "/api/v0/endpoints/", json={"name": "lan", "allow_private_workers": True}, headers=ADMIN
    )
    assert (await created.json())["endpoint"]["allow_private_workers"] is True
    await client.post("/api/v0/endpoints/", json={"name": "public"}, headers=ADMIN)
    assert client.app is not None
    private = body("w1", url="http://192.168.1.5:9", endpoint="lan")
    assert (await workers.report(client, private)).status == 200
    elsewhere = {**private, "id": "w2", "endpoint": "public"}
    assert (await workers.report(client, elsewhere)).status == 422


async def test_a_router_restart_keeps_credentials_and_unused_join_tokens(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    first = await aiohttp_client(create_app(settings(tmp_path)))
    joined = await first.post("/api/v0/endpoints/default/join-tokens", headers=ADMIN)
    unused = (await joined.json())["join_token"]
    registered = await post(first, body("w1"), workers.join_token(first.app))
    credential = (await registered.json())["credential"]
    await first.close()
    stored = (tmp_path / "state" / IDENTITIES_FILE).read_text()
    assert credential not in stored  # digests only
    assert unused not in stored
    again = await aiohttp_client(create_app(settings(tmp_path)))
    assert (await post(again, body("w1"), credential)).status == 200
    assert (await post(again, body("w2"), unused)).status == 200


async def test_a_stopped_worker_leaves_with_its_credential(client: TestClient[Any, Any]) -> None:
    assert client.app is not None
    await workers.report(client, body("w1"))
    credential = workers.credential(client.app, "w1")
    assert (await post(client, body("w1", state="stopped"), credential)).status == 200
    assert (await post(client, body("w1"), credential)).status == 401


async def test_join_tokens_need_the_admin_key_and_an_endpoint(
    client: TestClient[Any, Any],
) -> None:
    path = "/api/v0/endpoints/default/join-tokens"
    assert (await client.post(path)).status == 401
    assert (await client.post(path, headers=AUTH)).status == 401
    missing = await client.post("/api/v0/endpoints/nope/join-tokens", headers=ADMIN)
    assert missing.status == 404
    bad = await client.post(path, json={"ttl_s": -1}, headers=ADMIN)
    assert bad.status == 422
    bound = await client.post(path, json={"worker_id": "w9", "ttl_s": 5}, headers=ADMIN)
    answer = await bound.json()
    assert (answer["worker_id"], answer["endpoint"]) == ("w9", "default")
    wrong = await post(client, body("w8"), answer["join_token"])
    assert wrong.status == 403
    assert (await post(client, body("w9"), answer["join_token"])).status == 200


def test_a_shared_worker_token_needs_anonymous_workers_allowed() -> None:
    with pytest.raises(ValueError, match="TGIS_ALLOW_ANONYMOUS_WORKERS"):
        RouterSettings(worker_token="shared")
    allowed = RouterSettings(worker_token="shared", allow_anonymous_workers=True)
    assert allowed.worker_token.get_secret_value() == "shared"
