"""The synchronous Client end to end. The fake servers run on the test's event loop, so each
blocking call runs in a worker thread, as it would in a user's synchronous program."""

from __future__ import annotations

import asyncio
import threading

import pytest

from client import Client, StreamError, StreamResponse, TicketRejected
from tests.integration.client import fakes
from tests.integration.client.conftest import FAST_POLLING


def loop_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "tgi-serverless-client"]


def make_client(router: fakes.FakeRouter) -> Client:
    return Client(router.url, api_key=fakes.API_KEY, polling=FAST_POLLING)


async def test_generate_and_generate_stream_work_and_close_cleanly(
    router: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    def use() -> tuple[str, list[StreamResponse], int]:
        with make_client(router) as client:
            text = client.generate("Hi", max_new_tokens=5).generated_text
            events = list(client.generate_stream("Hi", max_new_tokens=5, seed=1))
            loops = len(loop_threads())
        return text, events, loops

    text, events, loops_while_open = await asyncio.to_thread(use)

    assert text == fakes.GENERATED_TEXT
    assert [event.token.text for event in events] == fakes.WORDS
    assert events[-1].generated_text == fakes.GENERATED_TEXT
    assert worker.seen[1].body["payload"]["parameters"] == {"max_new_tokens": 5, "seed": 1}
    assert loops_while_open == 1
    assert loop_threads() == []


async def test_one_client_serves_several_threads_at_once(
    router: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    client = make_client(router)
    try:
        calls = [asyncio.to_thread(client.generate, f"prompt {i}") for i in range(4)]
        responses = await asyncio.gather(*calls)
    finally:
        await asyncio.to_thread(client.close)

    assert [response.generated_text for response in responses] == [fakes.GENERATED_TEXT] * 4
    prompts = sorted(seen.body["payload"]["inputs"] for seen in worker.seen)
    assert prompts == [f"prompt {i}" for i in range(4)]
    assert loop_threads() == []


async def test_typed_errors_cross_the_thread(
    router: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    worker.reject = fakes.Scripted.error(403, "ticket replayed", "ticket_rejected")

    def use() -> None:
        with make_client(router) as client:
            client.generate("Hi")

    with pytest.raises(TicketRejected, match="ticket replayed"):
        await asyncio.to_thread(use)


async def test_a_stream_error_arrives_after_the_tokens_before_it(
    router: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    worker.stream = [
        *fakes.stream_events(1),
        b'data: {"error":"boom","error_type":"generation"}\n\n',
    ]
    received: list[str] = []

    def use() -> None:
        with make_client(router) as client:
            for event in client.generate_stream("Hi"):
                received.append(event.token.text)

    with pytest.raises(StreamError, match="boom"):
        await asyncio.to_thread(use)
    assert received == fakes.WORDS[:1]


async def test_breaking_out_of_a_stream_leaves_the_client_usable(router: fakes.FakeRouter) -> None:
    def use() -> tuple[str, str]:
        with make_client(router) as client:
            stream = client.generate_stream("Hi")
            first = next(stream).token.text
            stream.close()
            return first, client.generate("again").generated_text

    assert await asyncio.to_thread(use) == (fakes.WORDS[0], fakes.GENERATED_TEXT)


async def test_a_closed_client_refuses_requests(router: fakes.FakeRouter) -> None:
    client = make_client(router)
    await asyncio.to_thread(client.generate, "Hi")
    await asyncio.to_thread(client.close)
    await asyncio.to_thread(client.close)
    with pytest.raises(RuntimeError, match="this client is closed"):
        await asyncio.to_thread(client.generate, "Hi")
    assert len(router.seen) == 3  # two polls and a ticket, all before the close


async def test_calling_it_inside_an_event_loop_is_refused(router: fakes.FakeRouter) -> None:
    with make_client(router) as client, pytest.raises(RuntimeError, match="AsyncClient"):
        client.generate("Hi")
    assert router.seen == []


async def test_chat_request_and_request_stream_work_blocking(
    router: fakes.FakeRouter, worker: fakes.FakeWorker
) -> None:
    payload = {"inputs": "Hi", "parameters": {"max_new_tokens": 5}}

    def use() -> tuple[str, bytes, bytes]:
        with make_client(router) as client:
            chat = client.chat([{"role": "user", "content": "Hi"}], max_tokens=5)
            raw = client.request("/info_like", payload, cost=5)
            streamed = b"".join(client.request_stream("/generate_stream", payload, cost=5))
        return chat.content, raw, streamed

    content, raw, streamed = await asyncio.to_thread(use)

    assert content == fakes.GENERATED_TEXT
    assert b'"path":"/info_like"' in raw.replace(b" ", b"")
    assert streamed == b"".join(fakes.stream_events())
    assert [seen.path for seen in worker.seen] == [
        "/v1/chat/completions",
        "/info_like",
        "/generate_stream",
    ]
