"""A fake router and worker on 127.0.0.1 for each test, and clients pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pytest_aiohttp import AiohttpServer

from client import AsyncClient, PollPolicy, RetryPolicy
from protocol.keys import SigningKey
from tests.integration.client.fakes import API_KEY, FakeRouter, FakeWorker

FAST_POLLING = PollPolicy(timeout=5.0, initial_delay=0.01, max_delay=0.05)


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
async def worker(aiohttp_server: AiohttpServer, signing_key: SigningKey) -> FakeWorker:
    worker = FakeWorker(signing_key)
    server = await aiohttp_server(worker.app(), host="127.0.0.1")
    worker.url = str(server.make_url("")).rstrip("/")
    return worker


@pytest.fixture
async def router(
    aiohttp_server: AiohttpServer, signing_key: SigningKey, worker: FakeWorker
) -> FakeRouter:
    router = FakeRouter(signing_key, worker)
    server = await aiohttp_server(router.app(), host="127.0.0.1")
    router.url = str(server.make_url("")).rstrip("/")
    return router


@pytest.fixture
async def client(router: FakeRouter) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        router.url, api_key=API_KEY, polling=FAST_POLLING, retries=RetryPolicy.never()
    ) as client:
        yield client
