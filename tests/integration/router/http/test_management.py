"""The management API (/api/v0) and what its resources do to routing, over real sockets."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from router.http.app import REGISTRY, create_app
from router.settings import RouterSettings
from tests import worker_identity as workers
from tests.integration.router.routers import ClientFactory, router_settings

API_KEY = "default-endpoint-key"
ADMIN_KEY = "the-admin-key"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def settings(tmp_path: Path, **overrides: Any) -> RouterSettings:
    keys = {"api_key": API_KEY, "admin_key": ADMIN_KEY}
    return router_settings(tmp_path, **{**keys, **overrides})


@pytest.fixture
async def client(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(settings(tmp_path)))


async def create(client: TestClient[Any, Any], body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v0/endpoints/", json=body, headers=ADMIN)
    assert response.status == 201, await response.text()
    endpoint: dict[str, Any] = (await response.json())["endpoint"]
    return endpoint


async def report(client: TestClient[Any, Any], worker_id: str, **fields: Any) -> None:
    body: dict[str, Any] = {
        "id": worker_id,
        "url": f"http://{worker_id}.test:9",
        "state": "ready",
    }
    body.update({"max_perf": 100.0, **fields})
    response = await workers.report(client, body)
    assert response.status == 200, await response.text()


async def route(client: TestClient[Any, Any], key: str, **body: Any) -> Any:
    return await client.post(
        "/route/", json={"cost": 10, **body}, headers={"Authorization": f"Bearer {key}"}
    )


# -- the admin key --------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"X": ADMIN_KEY}])
async def test_the_management_api_needs_the_admin_key(
    client: TestClient[Any, Any], headers: dict[str, str]
) -> None:
    for method, path in [
        ("GET", "/api/v0/endpoints/"),
        ("POST", "/api/v0/endpoints/"),
        ("DELETE", "/api/v0/endpoints/default"),
        ("GET", "/api/v0/workergroups/"),
        ("POST", "/api/v0/keys/rotate"),
        ("DELETE", "/api/v0/keys/0123456789abcdef"),
    ]:
        response = await client.request(method, path, json={"name": "x"}, headers=headers)
        assert response.status == 401, (method, path)
        assert "admin key" in (await response.json())["error"]
    listed = await client.get("/api/v0/endpoints/", headers=ADMIN)
    assert [e["name"] for e in (await listed.json())["endpoints"]] == ["default"]


async def test_without_an_admin_key_the_api_is_off(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(settings(tmp_path, admin_key="")))
    response = await client.get("/api/v0/endpoints/", headers={"Authorization": "Bearer "})
    assert response.status == 401
    assert "off" in (await response.json())["error"]


# -- endpoints ------------------------------------------------------------------------------


async def test_create_list_show_update_delete(client: TestClient[Any, Any]) -> None:
    created = await create(
        client,
        {
            "name": "chat",
            "max_workers": 4,
            "target_util": 0.8,
            "cold_workers": 1,
            "template": {"backend": "tgi", "MODEL_ID": "org/model", "launch_args": ["--x", "1"]},
        },
    )
    assert len(created["api_key"]) >= 16
    assert created["template"] == {
        "backend": "tgi",
        "MODEL_ID": "org/model",
        "launch_args": ["--x", "1"],
    }
    assert (created["max_workers"], created["target_util"], created["endpoint_state"]) == (
        4,
        0.8,
        "active",
    )
    listed = (await (await client.get("/api/v0/endpoints/", headers=ADMIN)).json())["endpoints"]
    assert sorted(e["name"] for e in listed) == ["chat", "default"]
    assert all("api_key" not in e for e in listed)
    shown = await client.get("/api/v0/endpoints/chat?reveal_key=true", headers=ADMIN)
    assert (await shown.json())["endpoint"]["api_key"] == created["api_key"]

    patch = {"target_util": 0.5, "endpoint_state": "suspended", "template": {"MODEL_ID": "o/m2"}}
    updated = await client.patch("/api/v0/endpoints/chat", json=patch, headers=ADMIN)
    assert updated.status == 200, await updated.text()
    body = (await updated.json())["endpoint"]
    assert (body["target_util"], body["max_workers"], body["endpoint_state"]) == (
        0.5,
        4,
        "suspended",
    )
    assert body["template"]["MODEL_ID"] == "o/m2"
    assert body["template"]["backend"] == "tgi"  # kept: an update changes only what it names

    deleted = await client.delete("/api/v0/endpoints/chat", headers=ADMIN)
    assert deleted.status == 200
    assert (await client.get("/api/v0/endpoints/chat", headers=ADMIN)).status == 404
    assert (await client.delete("/api/v0/endpoints/chat", headers=ADMIN)).status == 404


@pytest.mark.parametrize(
    ("body", "named", "valid_range"),
    [
        ({"target_util": 1.5}, "target_util", "(0.0, 1.0]"),
        ({"target_util": 0}, "target_util", "(0.0, 1.0]"),
        ({"max_workers": -1}, "max_workers", "[0, 10000]"),
        ({"cold_mult": 1000}, "cold_mult", "[0.0, 100.0]"),
        ({"max_queue_time": 0}, "max_queue_time", "(0.0, 3600.0]"),
        ({"inactivity_timeout": -5}, "inactivity_timeout", "[0.0, 86400.0]"),
        ({"min_load": "lots"}, "min_load", ""),
        ({"endpoint_state": "asleep"}, "endpoint_state", "active"),
        ({"template": {"backend": "vllm"}}, "template.backend", "embedded"),
        ({"max_workers": 1, "cold_workers": 3}, "max_workers", "[3, 10000]"),
        ({"target_queue_time": 40, "max_queue_time": 30}, "target_queue_time", "(0, 30"),
    ],
)
async def test_out_of_range_parameters_are_422_naming_the_valid_range(
    client: TestClient[Any, Any], body: dict[str, Any], named: str, valid_range: str
) -> None:
    response = await client.post("/api/v0/endpoints/", json={"name": "e", **body}, headers=ADMIN)
    assert response.status == 422
    error = (await response.json())["error"]
    assert named in error, error
    assert valid_range in error, error
    update = await client.patch("/api/v0/endpoints/default", json=body, headers=ADMIN)
    assert update.status == 422


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"name": "bad name!"}, 422, "name"),
        ({"name": ""}, 422, "name"),
        ({"target_util": 0.5}, 422, "name"),
        ({"name": "x", "max_wrkers": 2}, 422, "max_wrkers"),
        (["name", "x"], 422, "object"),
        ({"name": "default"}, 409, "exists"),
    ],
)
async def test_bad_endpoint_bodies(
    client: TestClient[Any, Any], body: Any, status: int, says: str
) -> None:
    response = await client.post("/api/v0/endpoints/", json=body, headers=ADMIN)
    assert response.status == status
    assert says in (await response.json())["error"]


async def test_malformed_json_is_400(client: TestClient[Any, Any]) -> None:
    for method, path in [("POST", "/api/v0/endpoints/"), ("PATCH", "/api/v0/endpoints/default")]:
        response = await client.request(method, path, data=b"{nope", headers=ADMIN)
        assert response.status == 400


async def test_each_endpoint_has_its_own_key(client: TestClient[Any, Any]) -> None:
    chat = await create(client, {"name": "chat", "api_key": "chat-key-123"})
    await report(client, "w-default")
    await report(client, "w-chat", endpoint="chat")
    ticket = await (await route(client, chat["api_key"], endpoint="chat")).json()
    assert ticket["url"] == "http://w-chat.test:9"
    assert (await route(client, API_KEY, endpoint="chat")).status == 401
    assert (await route(client, "chat-key-123", endpoint="default")).status == 401
    assert (await route(client, ADMIN_KEY, endpoint="chat")).status == 401
    assert (await route(client, "x", endpoint="nope")).status == 404


async def test_endpoints_survive_a_restart(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    first = await aiohttp_client(create_app(settings(tmp_path)))
    chat = await create(first, {"name": "chat", "max_workers": 7})
    await first.close()
    again = await aiohttp_client(create_app(settings(tmp_path)))
    shown = await (await again.get("/api/v0/endpoints/chat?reveal_key=1", headers=ADMIN)).json()
    assert (shown["endpoint"]["max_workers"], shown["endpoint"]["api_key"]) == (7, chat["api_key"])
    state_file = tmp_path / "state" / "endpoints.json"
    assert state_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("state", ["suspended", "stopped"])
async def test_an_inactive_endpoint_answers_503_with_retry_after(
    client: TestClient[Any, Any], state: str
) -> None:
    await report(client, "w1")
    await client.patch("/api/v0/endpoints/default", json={"endpoint_state": state}, headers=ADMIN)
    response = await route(client, API_KEY, endpoint="default")
    assert response.status == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert state in (await response.json())["error"]
    await client.patch(
        "/api/v0/endpoints/default", json={"endpoint_state": "active"}, headers=ADMIN
    )
    assert "url" in await (await route(client, API_KEY, endpoint="default")).json()


async def test_deleting_an_endpoint_forgets_its_workers_and_their_load(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    app = create_app(settings(tmp_path))
    client = await aiohttp_client(app)
    chat = await create(client, {"name": "chat"})
    await report(client, "w-chat", endpoint="chat")
    assert (await route(client, chat["api_key"], endpoint="chat", cost=500)).status == 200
    assert app[REGISTRY].pending_total("chat") == 500
    await client.delete("/api/v0/endpoints/chat", headers=ADMIN)
    assert app[REGISTRY].pending_total() == 0
    assert app[REGISTRY].get("w-chat") is None
    body = {"id": "w-chat", "url": "http://w-chat.test:9", "endpoint": "chat", "state": "ready"}
    reported = await workers.report(client, body)
    assert reported.status == 401  # its credential went with its endpoint


# -- worker groups --------------------------------------------------------------------------


async def test_worker_groups(client: TestClient[Any, Any]) -> None:
    await create(client, {"name": "chat"})
    body = {
        "name": "chat-a100",
        "endpoint": "chat",
        "gpu_ram": 80,
        "search_params": "gpu_name=A100",
        "template": {"backend": "tgi", "MODEL_ID": "org/m"},
    }
    created = await client.post("/api/v0/workergroups/", json=body, headers=ADMIN)
    assert created.status == 201, await created.text()
    again = await client.post("/api/v0/workergroups/", json=body, headers=ADMIN)
    assert again.status == 409
    orphan = await client.post(
        "/api/v0/workergroups/", json={**body, "name": "o", "endpoint": "nope"}, headers=ADMIN
    )
    assert orphan.status == 422
    assert "nope" in (await orphan.json())["error"]
    too_big = await client.patch(
        "/api/v0/workergroups/chat-a100", json={"gpu_ram": 1e9}, headers=ADMIN
    )
    assert too_big.status == 422
    assert "gpu_ram" in (await too_big.json())["error"]
    patched = await client.patch(
        "/api/v0/workergroups/chat-a100", json={"test_workers": 1}, headers=ADMIN
    )
    group = (await patched.json())["workergroup"]
    assert (group["test_workers"], group["gpu_ram"], group["template"]["MODEL_ID"]) == (
        1,
        80,
        "org/m",
    )
    deleted = await (await client.delete("/api/v0/endpoints/chat", headers=ADMIN)).json()
    assert deleted["workergroups"] == ["chat-a100"]
    listed = await (await client.get("/api/v0/workergroups/", headers=ADMIN)).json()
    assert listed == {"workergroups": []}
    missing = await client.get("/api/v0/workergroups/chat-a100", headers=ADMIN)
    assert missing.status == 404


# -- secrets stay out of logs ---------------------------------------------------------------


async def test_no_key_reaches_the_logs(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    chat = await create(client, {"name": "chat", "api_key": "chat-secret-key-9"})
    await client.patch(
        "/api/v0/endpoints/chat", json={"api_key": "chat-secret-key-10"}, headers=ADMIN
    )
    await report(client, "w1", endpoint="chat", error_msg="")
    await route(client, "chat-secret-key-10", endpoint="chat")
    await route(client, "wrong-secret-key-11", endpoint="chat")
    await client.post(
        "/worker_status/",
        json={"id": "w2", "url": "u"},
        headers={"Authorization": "Bearer bad-token-12"},
    )
    joined = await client.post("/api/v0/endpoints/chat/join-tokens", headers=ADMIN)
    token = (await joined.json())["join_token"]
    body = {"id": "w3", "url": "http://w3.test:9", "endpoint": "chat"}
    registered = await client.post("/worker_status/", json=body, headers=workers.bearer(token))
    credential = (await registered.json())["credential"]
    await client.post("/api/v0/keys/rotate", headers=ADMIN)
    text = caplog.text
    assert "endpoint_created endpoint=chat" in text  # the events are logged ...
    for secret in (chat["api_key"], "chat-secret-key-10", "wrong-secret-key-11", "bad-token-12"):
        assert secret not in text  # ... without any key
    for secret in (ADMIN_KEY, API_KEY, token, credential, workers.credential(client.app, "w1")):
        assert secret not in text
