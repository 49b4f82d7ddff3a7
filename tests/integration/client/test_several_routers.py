"""AsyncClient with several routers: a route request that a router leaves unanswered or answers
5xx goes on to the next router; a 4xx is the answer; nothing is sent again after a worker's first
byte; and the router that answered last is asked first."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pytest_aiohttp import AiohttpServer

from client import (
    AsyncClient,
    AuthenticationError,
    ConnectionFailed,
    RetryPolicy,
    StreamResponse,
    Timeouts,
)
from protocol.keys import SigningKey
from tests.integration.client import fakes
from tests.integration.client.conftest import FAST_POLLING
from tests.ports import free_port


@pytest.fixture
async def second(
    aiohttp_server: AiohttpServer, signing_key: SigningKey, worker: fakes.FakeWorker
) -> fakes.FakeRouter:
    router = fakes.FakeRouter(signing_key, worker)
    server = await aiohttp_server(router.app(), host="127.0.0.1")
    router.url = str(server.make_url("")).rstrip("/")
    return router


def client_of(*urls: str, retries: RetryPolicy | None = None, route_s: float = 5.0) -> AsyncClient:
    return AsyncClient(
        list(urls),
        api_key=fakes.API_KEY,
        polling=FAST_POLLING,
        retries=retries or RetryPolicy.never(),
        timeout=Timeouts(route=route_s, connect=5.0, first_byte=5.0, idle=5.0),
    )


async def read_through(stream: AsyncIterator[StreamResponse]) -> list[StreamResponse]:
    return [event async for event in stream]


async def test_a_router_that_refuses_connections_is_passed_over_then_avoided(
    second: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    second.waits = 0
    async with client_of(dead, second.url) as client:
        assert client.router_urls == (dead, second.url)
        first = await client.generate("Hi", max_new_tokens=5)
        assert client.router_url == second.url  # asked first from now on
        again = await client.generate("Hi", max_new_tokens=5)
    assert first.generated_text == again.generated_text == fakes.GENERATED_TEXT
    assert len(second.seen) == len(worker.seen) == 2


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_5xx_from_a_router_goes_on_to_the_next_one(
    router: fakes.FakeRouter, second: fakes.FakeRouter, worker: fakes.FakeWorker, status: int
) -> None:
    router.reject = fakes.Scripted.error(status, "router broke", "internal")
    second.waits = 0
    async with client_of(router.url, second.url) as client:
        await client.generate("Hi", max_new_tokens=5)
        await client.generate("Hi", max_new_tokens=5)
    assert len(router.seen) == 1  # the second request went to the router that answered
    assert len(second.seen) == len(worker.seen) == 2


async def test_a_router_that_does_not_answer_in_time_goes_on_to_the_next_one(
    router: fakes.FakeRouter, second: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    router.delay = 2.0
    second.waits = 0
    async with client_of(router.url, second.url, route_s=0.2) as client:
        response = await client.generate("Hi", max_new_tokens=5)
    assert response.generated_text == fakes.GENERATED_TEXT
    assert len(worker.seen) == 1


async def test_a_4xx_from_a_router_is_the_answer(
    router: fakes.FakeRouter, second: fakes.FakeRouter
) -> None:
    router.reject = fakes.Scripted.error(401, "wrong API key", "unauthorized")
    async with client_of(router.url, second.url) as client:
        with pytest.raises(AuthenticationError):
            await client.generate("Hi", max_new_tokens=5)
    assert second.seen == []


async def test_a_wait_s_request_idx_goes_only_to_the_router_that_gave_it(
    router: fakes.FakeRouter, second: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    router.waits, router.fail_after = 10, 1  # one "wait" answer, then it goes away
    second.waits = 0
    async with client_of(router.url, second.url) as client:
        await client.generate("Hi", max_new_tokens=5)
    assert [seen.body.get("request_idx") for seen in router.seen] == [None, 1]
    assert [seen.body.get("request_idx") for seen in second.seen] == [None]
    assert len(worker.seen) == 1


async def test_nothing_is_sent_again_after_the_first_byte(
    router: fakes.FakeRouter, second: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    worker.drop_connection_after = 30
    router.waits = 0
    retries = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05)
    async with client_of(router.url, second.url, retries=retries) as client:
        with pytest.raises(ConnectionFailed, match="broke off"):
            await read_through(client.generate_stream("Hi", max_new_tokens=5))
    assert (len(router.seen), len(worker.seen), second.seen) == (1, 1, [])


async def test_when_every_router_fails_the_retries_ask_them_all_again(
    router: fakes.FakeRouter, second: fakes.FakeRouter
) -> None:
    for each in (router, second):
        each.reject = fakes.Scripted.error(503, "busy", "overloaded", **{"Retry-After": "0"})
    retries = RetryPolicy(attempts=2, initial_delay=0.01, max_delay=0.05)
    async with client_of(router.url, second.url, retries=retries) as client:
        with pytest.raises(Exception, match="busy"):
            await client.generate("Hi", max_new_tokens=5)
    assert (len(router.seen), len(second.seen)) == (2, 2)
