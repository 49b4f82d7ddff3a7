"""chat, raw requests, split timeouts, retries before the first byte, and Vast-style keys."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from client import (
    AsyncClient,
    ConnectionFailed,
    OverloadedError,
    RequestTimeout,
    RetryPolicy,
    Timeouts,
    ValidationError,
)
from tests.integration.client import fakes
from tests.integration.client.conftest import FAST_POLLING
from tests.ports import free_port

QUICK_RETRIES = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05)


def tight(phase: str) -> Timeouts:
    """0.2 s for `phase` ("route", "connect", "first_byte" or "idle"), 5 s for the others."""
    return replace(Timeouts.uniform(5), **{phase: 0.2})


async def read_through(stream: AsyncIterator[object]) -> None:
    async for _ in stream:
        pass


def make_client(router: fakes.FakeRouter, **kwargs: object) -> AsyncClient:
    options: dict[str, object] = {"polling": FAST_POLLING, "retries": QUICK_RETRIES, **kwargs}
    return AsyncClient(router.url, api_key=fakes.API_KEY, **options)  # type: ignore[arg-type]


async def test_chat_posts_an_openai_body_with_a_ticket_and_types_the_answer(
    client: AsyncClient, router: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    completion = await client.chat(messages, max_tokens=7, temperature=0.2)

    assert completion.content == fakes.GENERATED_TEXT
    assert completion.usage is not None
    assert completion.usage.completion_tokens == len(fakes.WORDS)
    assert completion.model_dump()["system_fingerprint"] == "fp"
    [call] = worker.seen
    assert call.path == "/v1/chat/completions"
    assert call.body["payload"] == {
        "model": "tgi",
        "messages": messages,
        "max_tokens": 7,
        "temperature": 0.2,
    }
    assert router.seen[-1].body["cost"] == 7


@pytest.mark.parametrize("messages", [[], [{"content": "no role"}]])
async def test_chat_refuses_bad_messages_before_routing(
    client: AsyncClient, router: fakes.FakeRouter, messages: list[dict[str, str]]
) -> None:
    with pytest.raises(ValidationError):
        await client.chat(messages)
    assert router.seen == []


async def test_request_posts_any_path_with_the_wire_envelope(
    client: AsyncClient, router: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    payload = {"inputs": "abc", "parameters": {"max_new_tokens": 1}}
    body = await client.request("/tokenize", payload, cost=1)

    assert json.loads(body) == {"path": "/tokenize", "payload": payload}
    assert worker.seen[0].body["auth_data"] == router.issued[0]


async def test_request_refuses_a_path_that_is_not_a_path(client: AsyncClient) -> None:
    with pytest.raises(ValidationError, match="start with"):
        await client.request("http://elsewhere/x", {}, cost=1)


async def test_a_429_before_the_first_byte_is_retried_with_a_new_ticket(
    router: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    worker.reject = fakes.Scripted.error(429, "queue full", "overloaded", **{"Retry-After": "0.01"})
    worker.rejections_left = 2
    async with make_client(router) as client:
        events = [event async for event in client.generate_stream("Hi", max_new_tokens=5)]

    assert events[-1].generated_text == fakes.GENERATED_TEXT
    assert len(worker.seen) == 3
    reqnums = [seen.body["auth_data"]["reqnum"] for seen in worker.seen]
    assert len(set(reqnums)) == 3
    # Each new route asks the router to prefer another worker than the ones that failed.
    first_routes = [seen.body for seen in router.seen if "request_idx" not in seen.body]
    assert [body.get("avoid", []) for body in first_routes] == [
        [],
        [worker.url],
        [worker.url],
    ]


async def test_retries_stop_after_the_policy_s_attempts(
    router: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    worker.reject = fakes.Scripted.error(503, "loading", "overloaded")
    async with make_client(router) as client:
        with pytest.raises(OverloadedError):
            await client.generate("Hi", max_new_tokens=5)
    assert len(worker.seen) == QUICK_RETRIES.attempts


async def test_an_unreachable_router_is_retried_then_reported(router: fakes.FakeRouter) -> None:
    dead = AsyncClient(
        f"http://127.0.0.1:{free_port()}", api_key=fakes.API_KEY, retries=QUICK_RETRIES
    )
    async with dead:
        with pytest.raises(ConnectionFailed):
            await dead.generate("Hi")


async def test_a_stream_that_stalls_after_its_first_byte_hits_the_idle_limit(
    router: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    worker.stall_after_first_chunk = 2.0
    async with make_client(router, timeout=tight("idle")) as client:
        with pytest.raises(RequestTimeout):
            await read_through(client.generate_stream("Hi", max_new_tokens=5))
    assert len(worker.seen) == 1  # never retried after the first byte


async def test_a_slow_first_byte_hits_the_first_byte_limit(
    router: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    worker.delay = 2.0
    async with make_client(router, timeout=tight("first_byte")) as client:
        with pytest.raises(RequestTimeout):
            await client.generate("Hi", max_new_tokens=5)


async def test_vast_style_sends_the_key_in_the_body_only(router: fakes.FakeRouter) -> None:
    async with make_client(router, api_key_in_body=True) as client:
        response = await client.generate("Hi", max_new_tokens=5)

    assert response.generated_text == fakes.GENERATED_TEXT
    assert all(seen.body["api_key"] == fakes.API_KEY for seen in router.seen)
    assert all("Authorization" not in seen.headers for seen in router.seen)


async def test_a_vast_style_wait_without_request_idx_is_polled_until_a_ticket(
    router: fakes.FakeRouter,
) -> None:
    router.waits_without_request_idx = True
    async with make_client(router, api_key_in_body=True) as client:
        response = await client.generate("Hi", max_new_tokens=5)

    assert response.generated_text == fakes.GENERATED_TEXT
    assert len(router.seen) == router.waits + 1
    assert all("request_idx" not in seen.body for seen in router.seen)


@pytest.mark.parametrize("bad", [{"idle": 0}, {"route": -1.0}, {"connect": float("nan")}])
def test_timeouts_refuse_non_positive_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be a positive number"):
        Timeouts(**bad)


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_worker_that_refuses_connections_is_avoided_on_the_retry(
    router: fakes.FakeRouter, worker: fakes.FakeWorker, streaming: bool
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    router.worker_urls = [dead, worker.url]  # the router prefers the dead one until told not to
    async with make_client(router) as client:
        if streaming:
            events = [event async for event in client.generate_stream("Hi", max_new_tokens=5)]
            text = events[-1].generated_text
        else:
            text = (await client.generate("Hi", max_new_tokens=5)).generated_text

    assert text == fakes.GENERATED_TEXT
    assert len(worker.seen) == 1
    first_routes = [seen.body for seen in router.seen if "request_idx" not in seen.body]
    assert [body.get("avoid", []) for body in first_routes] == [[], [dead]]
    assert [ticket["url"] for ticket in router.issued] == [dead, worker.url]


async def test_a_connection_dropped_after_the_first_byte_is_not_retried(
    router: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    worker.drop_connection_after = 30
    async with make_client(router) as client:
        with pytest.raises(ConnectionFailed, match="broke off"):
            await read_through(client.generate_stream("Hi", max_new_tokens=5))
    assert len(worker.seen) == 1


async def test_a_slow_router_hits_the_route_limit(
    router: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    router.delay = 2.0
    async with make_client(router, timeout=tight("route")) as client:
        with pytest.raises(RequestTimeout) as caught:
            await client.generate("Hi", max_new_tokens=5)
    assert caught.value.origin == "router"
    assert worker.seen == []
