"""Vast.ai's own client (the `vastai` package) against the router app in process: it lists the
endpoint, reads its workers, and, with no worker ready, polls /route/ with the same request_idx
until one is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from router.http.app import create_app
from tests.integration.router.routers import ClientFactory, router_settings

vast_client = pytest.importorskip("vastai.serverless.client.client")

API_KEY = "vast-client-key"
WORKER_TOKEN = "vast-client-worker-token"
PAYLOAD = {"inputs": "Hello", "parameters": {"max_new_tokens": 4}}


@pytest.fixture
async def router(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient[Any, Any]:
    settings = router_settings(
        tmp_path, api_key=API_KEY, worker_token=WORKER_TOKEN, allow_anonymous_workers=True
    )
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def worker() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    async def generate(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"generated_text": " hi"})

    app = web.Application()
    app.router.add_post("/generate", generate)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), received
    await server.close()


def vast(router: TestClient[Any, Any], api_key: str = API_KEY) -> Any:
    base = str(router.make_url("")).rstrip("/")
    client = vast_client.CoroutineServerless(
        api_key=api_key, autoscaler_url=base, webserver_url=base
    )
    client.SSL_CERT_URL = f"{base}/static/jvastai_root.cer"
    return client


async def register(router: TestClient[Any, Any], url: str) -> None:
    report = {"id": 7, "url": url, "loadtime": 1.5, "max_perf": 50.0, "cur_load": 0.0}
    report["mtoken"] = WORKER_TOKEN  # as Vast's PyWorker reports: no state, an integer id
    response = await router.post("/worker_status/", json=report)
    assert response.status == 200, await response.text()


async def test_it_lists_the_endpoint_its_key_opens(
    router: TestClient[Any, Any], worker: tuple[str, list[dict[str, Any]]]
) -> None:
    await register(router, worker[0])
    async with vast(router) as client:
        endpoints = await client.get_endpoints()
        assert [(e.name, e.api_key) for e in endpoints] == [("default", API_KEY)]
        again = await client.fetch_endpoint(endpoints[0].id)
        assert again.config.endpoint_name == "default"
        [listed] = await client.get_endpoint_workers(endpoints[0])
        assert (listed.id, listed.status, listed.measured_perf) == (7, "IDLE", 50.0)


async def test_a_wrong_key_lists_nothing(router: TestClient[Any, Any]) -> None:
    async with vast(router, api_key="not-the-key") as client:
        with pytest.raises(Exception, match="HTTP 401"):
            await client.get_endpoints()


async def test_with_no_worker_it_polls_with_the_same_request_idx(
    router: TestClient[Any, Any], worker: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = worker
    async with vast(router) as client:
        endpoint = await client.get_endpoint("default")
        request = asyncio.ensure_future(endpoint.request("/generate", PAYLOAD, cost=4))
        await asyncio.sleep(1.5)  # the first answers say "waiting": it polls
        assert not request.done()
        await register(router, url)
        result = await asyncio.wait_for(request, 30)
    assert result["ok"]
    assert result["response"] == {"generated_text": " hi"}
    [envelope] = received
    assert envelope["auth_data"]["request_idx"] == result["request_idx"] == 1
    assert envelope["auth_data"]["cost"] == 4
