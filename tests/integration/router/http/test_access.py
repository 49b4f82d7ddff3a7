"""Who may read the router's status: `/status` and `/ui` want the admin key (Bearer, or a
browser's Basic password) unless `public_status`; `/metrics` is open, on the main port or on
an address of its own."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from router.http.app import create_app
from tests import worker_identity
from tests.integration.router.routers import ClientFactory, router_settings
from tests.ports import free_port

API_KEY = "client-api-key"
ADMIN_KEY = "operator-admin-key"
WORKER_URL = "http://10.1.2.3:7000"


async def router(
    aiohttp_client: ClientFactory, tmp_path: Path, **fields: Any
) -> TestClient[Any, Any]:
    keys = {"api_key": API_KEY, "admin_key": ADMIN_KEY, "allow_private_workers": True}
    client = await aiohttp_client(create_app(router_settings(tmp_path, **{**keys, **fields})))
    report = {"id": "w1", "url": WORKER_URL, "state": "ready", "max_perf": 10.0}
    assert (await worker_identity.report(client, report)).status == 200
    return client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def basic(user: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


@pytest.mark.parametrize("path", ["/status", "/ui"])
async def test_status_is_refused_without_the_admin_key(
    aiohttp_client: ClientFactory, tmp_path: Path, path: str
) -> None:
    client = await router(aiohttp_client, tmp_path)
    assert client.app is not None
    worker = worker_identity.credential(client.app, "w1")
    refused = [{}, bearer(API_KEY), bearer(worker), basic("admin", API_KEY), basic("", "")]
    for headers in refused:
        response = await client.get(path, headers=headers)
        assert response.status == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
        body = await response.text()
        assert WORKER_URL not in body
        assert (await response.json())["error_type"] == "unauthorized"


@pytest.mark.parametrize("path", ["/status", "/ui"])
async def test_status_is_shown_for_the_admin_key_as_bearer_or_basic_password(
    aiohttp_client: ClientFactory, tmp_path: Path, path: str
) -> None:
    client = await router(aiohttp_client, tmp_path)
    for headers in (bearer(ADMIN_KEY), basic("admin", ADMIN_KEY), basic("anyone", ADMIN_KEY)):
        response = await client.get(path, headers=headers)
        assert response.status == 200, headers
        assert WORKER_URL in await response.text()


async def test_a_router_without_an_admin_key_shows_its_status_to_no_one(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client = await router(aiohttp_client, tmp_path, admin_key="")
    for headers in ({}, bearer(""), basic("admin", "")):
        assert (await client.get("/status", headers=headers)).status == 401


async def test_public_status_opens_status_and_ui_but_not_the_management_api(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client = await router(aiohttp_client, tmp_path, public_status=True)
    for path in ("/status", "/ui"):
        response = await client.get(path)
        assert response.status == 200, path
        assert WORKER_URL in await response.text()
    assert (await client.get("/api/v0/endpoints/")).status == 401


async def test_metrics_are_open_on_the_main_port_by_default(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client = await router(aiohttp_client, tmp_path)
    response = await client.get("/metrics")
    assert response.status == 200
    assert "tgis_router_workers" in await response.text()


async def test_metrics_on_an_address_of_their_own_leave_the_main_port(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    port = free_port()
    client = await router(aiohttp_client, tmp_path, metrics_address=f"127.0.0.1:{port}")
    assert (await client.get("/metrics")).status == 404
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            assert 'tgis_router_workers{endpoint="default",state="ready"} 1.0' in (
                await response.text()
            )
        async with session.get(f"http://127.0.0.1:{port}/status") as response:
            assert response.status == 404
    await client.close()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{port}/metrics")


async def test_the_metrics_address_has_the_main_ports_connection_guard(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """A scraper that never finishes its headers is let go after `header_timeout_s`, as on the
    main port (a plain aiohttp site would hold it for good); an unknown path is a JSON 404."""
    port = free_port()
    client = await router(
        aiohttp_client, tmp_path, metrics_address=f"127.0.0.1:{port}", header_timeout_s=0.3
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and nothing more
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), 10) == b""  # closed, unanswered
    assert time.monotonic() - started < 5
    writer.close()
    await writer.wait_closed()
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/nothing") as response,
    ):
        assert response.status == 404
        assert "error" in await response.json()
    await client.close()
