"""AsyncClient end to end over real sockets against the fake router and worker."""

from __future__ import annotations

import json

import aiohttp
import pytest

from client import AsyncClient, PollPolicy, StreamResponse, errors
from tests.integration.client import fakes
from tests.integration.client.conftest import FAST_POLLING
from tests.ports import free_port


async def collect(client: AsyncClient, prompt: str = "Tell me") -> list[StreamResponse]:
    return [event async for event in client.generate_stream(prompt, max_new_tokens=10)]


async def test_generate_routes_polls_then_posts_the_ticket_to_the_worker(
    client: AsyncClient, router: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    response = await client.generate("Tell me", max_new_tokens=12, temperature=0.5)

    assert response.generated_text == fakes.GENERATED_TEXT
    assert [seen.body for seen in router.seen] == [
        {"endpoint": "default", "cost": 12},
        {"endpoint": "default", "cost": 12, "request_idx": 1},
        {"endpoint": "default", "cost": 12, "request_idx": 1},
    ]
    assert {seen.headers["Authorization"] for seen in router.seen} == {f"Bearer {fakes.API_KEY}"}
    [call] = worker.seen
    assert call.path == "/generate"
    assert call.body == {
        "auth_data": router.issued[0],
        "payload": {"inputs": "Tell me", "parameters": {"max_new_tokens": 12, "temperature": 0.5}},
    }


async def test_the_ticket_arrives_exactly_and_the_api_key_never_reaches_the_worker(
    client: AsyncClient, router: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    await client.generate("Hi")

    [call] = worker.seen
    sent, issued = call.body["auth_data"], router.issued[0]
    assert json.dumps(sent, sort_keys=True) == json.dumps(issued, sort_keys=True)
    assert isinstance(sent["exp"], float)
    assert isinstance(sent["cost"], int)
    assert "Authorization" not in call.headers
    assert fakes.API_KEY not in json.dumps(call.body)


async def test_generate_stream_yields_typed_events_split_across_chunks(
    client: AsyncClient, worker: fakes.FakeWorker
) -> None:
    worker.chunk_size = 1
    events = await collect(client)

    assert [event.token.text for event in events] == fakes.WORDS
    assert [event.generated_text for event in events[:-1]] == [None] * (len(fakes.WORDS) - 1)
    assert events[-1].generated_text == fakes.GENERATED_TEXT
    assert events[-1].details is not None
    assert events[-1].details.seed == 42
    assert worker.seen[0].path == "/generate_stream"


async def test_an_error_event_raises_after_the_tokens_before_it(
    client: AsyncClient, worker: fakes.FakeWorker
) -> None:
    error = b'data: {"error":"Request failed during generation","error_type":"generation"}\n\n'
    worker.stream = [*fakes.stream_events(2), error]
    worker.chunk_size = 10_000  # the tokens and the error arrive in one chunk
    received: list[str] = []

    async def consume() -> None:
        async for event in client.generate_stream("Hi"):
            received.append(event.token.text)

    with pytest.raises(errors.StreamError) as caught:
        await consume()
    assert received == fakes.WORDS[:2]
    assert caught.value.error_type == "generation"
    assert caught.value.message == "Request failed during generation"


async def test_a_stream_that_ends_before_its_final_event_raises(
    client: AsyncClient, worker: fakes.FakeWorker
) -> None:
    worker.stream = fakes.stream_events(3)
    with pytest.raises(errors.IncompleteStream):
        await collect(client)


async def test_a_connection_dropped_mid_stream_raises(
    client: AsyncClient, worker: fakes.FakeWorker
) -> None:
    worker.drop_connection_after = 30
    with pytest.raises(errors.ConnectionFailed, match="broke off") as caught:
        await collect(client)
    assert caught.value.origin == "worker"


async def test_leaving_a_stream_early_leaves_the_client_usable(
    client: AsyncClient, worker: fakes.FakeWorker
) -> None:
    stream = client.generate_stream("Hi")
    first = await anext(stream)
    await stream.aclose()

    assert first.token.text == fakes.WORDS[0]
    assert (await client.generate("again")).generated_text == fakes.GENERATED_TEXT


async def test_a_wrong_api_key_is_an_authentication_error(
    router: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    async with AsyncClient(router.url, api_key="wrong") as client:
        with pytest.raises(errors.AuthenticationError) as caught:
            await client.generate("Hi")
    assert caught.value.status == 401
    assert caught.value.message == "invalid API key"
    assert worker.seen == []


async def test_no_api_key_sends_no_authorization_header(router: fakes.FakeRouter) -> None:
    async with AsyncClient(router.url) as client:
        with pytest.raises(errors.AuthenticationError):
            await client.generate("Hi")
    assert "Authorization" not in router.seen[0].headers


async def test_an_unknown_endpoint_is_endpoint_not_found(router: fakes.FakeRouter) -> None:
    async with AsyncClient(router.url, endpoint="nope", api_key=fakes.API_KEY) as client:
        with pytest.raises(errors.EndpointNotFound) as caught:
            await client.generate("Hi")
    assert caught.value.status == 404


@pytest.mark.parametrize(
    ("origin", "status", "retry_after"), [("router", 503, 7), ("worker", 429, 2)]
)
async def test_a_router_or_worker_at_capacity_is_overloaded_with_retry_after(
    client: AsyncClient,
    router: fakes.FakeRouter,
    worker: fakes.FakeWorker,
    origin: str,
    status: int,
    retry_after: int,
) -> None:
    refusing = router if origin == "router" else worker
    headers = {"Retry-After": str(retry_after)}
    refusing.reject = fakes.Scripted.error(status, "no capacity", "overloaded", **headers)
    with pytest.raises(errors.OverloadedError) as caught:
        await client.generate("Hi")
    error = caught.value
    assert (error.origin, error.status, error.retry_after) == (origin, status, retry_after)


async def test_no_worker_before_the_deadline_is_no_capacity(router: fakes.FakeRouter) -> None:
    router.waits = 10**6
    polling = PollPolicy(timeout=0.2, initial_delay=0.01, max_delay=0.05)
    async with AsyncClient(router.url, api_key=fakes.API_KEY, polling=polling) as client:
        with pytest.raises(errors.NoCapacityError, match="became ready"):
            await client.generate("Hi")
    assert len(router.seen) >= 3
    assert {seen.body.get("request_idx") for seen in router.seen[1:]} == {1}


async def test_a_ticket_with_a_bad_signature_is_rejected_by_the_worker(
    client: AsyncClient, router: fakes.FakeRouter
) -> None:
    router.worker.key = type(router.key).generate()
    with pytest.raises(errors.TicketRejected) as caught:
        await client.generate("Hi")
    assert caught.value.status == 401
    assert caught.value.origin == "worker"


async def test_a_ticket_cheaper_than_the_workload_is_rejected_with_403(
    client: AsyncClient, router: fakes.FakeRouter
) -> None:
    router.cost_override = 1
    with pytest.raises(errors.TicketRejected) as caught:
        await collect(client)
    assert caught.value.status == 403
    assert caught.value.message == "workload above ticket cost"


async def test_a_non_json_5xx_is_a_server_error_with_its_text(
    client: AsyncClient, worker: fakes.FakeWorker
) -> None:
    worker.reject = fakes.Scripted(502, b"upstream went away")
    with pytest.raises(errors.ServerError) as caught:
        await collect(client)
    assert caught.value.message == "upstream went away"


async def test_an_unreachable_router_is_a_connection_failure() -> None:
    async with AsyncClient(f"http://127.0.0.1:{free_port()}", api_key=fakes.API_KEY) as client:
        with pytest.raises(errors.ConnectionFailed) as caught:
            await client.generate("Hi")
    assert caught.value.origin == "router"
    assert caught.value.status is None


async def test_a_slow_worker_is_a_timeout(
    router: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    worker.delay = 1.0
    async with AsyncClient(
        router.url, api_key=fakes.API_KEY, timeout=0.2, polling=FAST_POLLING
    ) as c:
        with pytest.raises(errors.RequestTimeout) as caught:
            await c.generate("Hi")
    assert caught.value.origin == "worker"


async def test_an_injected_session_is_used_and_left_open(router: fakes.FakeRouter) -> None:
    async with aiohttp.ClientSession(headers={"X-Probe": "1"}) as session:
        client = AsyncClient(
            router.url, api_key=fakes.API_KEY, polling=FAST_POLLING, session=session
        )
        async with client:
            await client.generate("Hi")
        assert not session.closed
    assert router.seen[0].headers["X-Probe"] == "1"


async def test_a_closed_client_refuses_new_requests(client: AsyncClient) -> None:
    await client.aclose()
    with pytest.raises(RuntimeError, match="this client is closed"):
        await client.generate("Hi")
