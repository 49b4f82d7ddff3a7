"""The PyWorker's relay (`pyworker/relay.py`), in process: what the backend answers comes back
unchanged, JSON or SSE; a backend that fails, stalls or goes away, and a client that leaves,
each end the request cleanly and leave nothing counted in flight."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from pyworker.load import Outcome
from pyworker.state import LOAD
from tests.fakes.fake_tgi import FakeTGI, Mode, expected_stream
from tests.integration.pyworker.stack import (
    PAYLOAD,
    ServerFactory,
    Stack,
    start_stack,
    wait_until,
)


async def test_generate_is_relayed_unchanged(stack: Stack) -> None:
    response = await stack.post(
        "/generate", {"auth_data": await stack.ticket(), "payload": PAYLOAD}
    )
    assert response.status == 200
    assert (await response.json())["generated_text"] == " a b c"
    assert response.headers["x-compute-type"] == "fake"
    assert stack.backend.payloads("/generate") == [PAYLOAD]
    stack.assert_idle()
    assert stack.worker.app[LOAD].outcomes[Outcome.SUCCESS] == 1


async def test_generate_stream_is_relayed_byte_for_byte(stack: Stack) -> None:
    body = {"auth_data": await stack.ticket(), "payload": PAYLOAD}
    response = await stack.post("/generate_stream", body)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert await response.read() == expected_stream(3)
    stack.assert_idle()


async def test_a_lone_surrogate_in_the_payload_is_relayed_escaped(stack: Stack) -> None:
    """Python's `json` reads a `\\ud800` escape; it has no UTF-8 form, so it goes on escaped."""
    ticket = json.dumps(await stack.ticket()).encode()
    payload = json.dumps({**PAYLOAD, "inputs": "\ud800"}).encode()
    raw = b'{"auth_data":' + ticket + b',"payload":' + payload + b"}"
    response = await stack.http.post(f"{stack.worker_url}/generate", data=raw)
    assert response.status == 200
    assert stack.backend.received[-1][1]["inputs"] == "\ud800"
    stack.assert_idle()


@pytest.mark.parametrize("path", ["/generate", "/generate_stream"])
@pytest.mark.parametrize(
    ("mode", "status", "body", "outcome"),
    [
        pytest.param(
            "error_422",
            422,
            {"error": "Input validation error: `top_p` bad", "error_type": "validation"},
            Outcome.SUCCESS,  # the client's fault, not the backend's
            id="422",
        ),
        pytest.param(
            "error_500", 500, {"error": "boom", "error_type": "generation"}, Outcome.ERROR, id="500"
        ),
    ],
)
async def test_backend_error_answers_pass_through_and_are_counted(
    stack: Stack, path: str, mode: Mode, status: int, body: dict[str, str], outcome: Outcome
) -> None:
    stack.backend.mode = mode
    response = await stack.post(path, {"auth_data": await stack.ticket(), "payload": PAYLOAD})
    assert response.status == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert await response.json() == body
    assert stack.worker.app[LOAD].outcomes[outcome] == 1
    stack.assert_idle()


async def test_a_backend_that_dies_mid_stream_ends_the_stream_with_an_error_event(
    stack: Stack,
) -> None:
    stack.backend.mode = "die_mid_stream"
    body = {"auth_data": await stack.ticket(), "payload": PAYLOAD}
    response = await stack.post("/generate_stream", body)
    text = (await response.read()).decode()
    assert response.status == 200
    events = [line for line in text.split("\n\n") if line]
    assert events[0].startswith('data: {"index":1')
    assert "incomplete_generation_stream" in events[-1]
    assert len(events) == 2  # the half-written event was not passed on
    stack.assert_idle()


async def test_a_client_that_disconnects_mid_stream_cancels_the_backend(stack: Stack) -> None:
    stack.backend.mode = "slow_stream"
    stack.backend.tokens = 50
    body = {"auth_data": await stack.ticket(50), "payload": PAYLOAD}
    response = await stack.post("/generate_stream", body)
    await response.content.readline()
    response.close()
    await asyncio.wait_for(stack.backend.stream_cancelled.wait(), 5)
    await wait_until(lambda: stack.worker.app[LOAD].requests_working == 0)
    stack.assert_idle()
    outcomes = stack.worker.app[LOAD].outcomes
    assert (outcomes[Outcome.CANCELLED], outcomes[Outcome.ERROR]) == (1, 0)
    metrics = await (await stack.http.get(f"{stack.worker_url}/metrics")).text()
    assert 'tgis_worker_requests_total{outcome="cancelled"} 1.0' in metrics
    assert "tgis_worker_relay_errors_total{" not in metrics


async def test_a_client_that_leaves_while_the_backend_works_cancels_it(stack: Stack) -> None:
    stack.backend.gate = asyncio.Event()  # the backend holds /generate until the gate opens
    body = {"auth_data": await stack.ticket(), "payload": PAYLOAD}
    call = asyncio.create_task(stack.post("/generate", body))
    await wait_until(lambda: stack.backend.active == 1)
    call.cancel()  # the client closes its connection
    with contextlib.suppress(asyncio.CancelledError):
        await call
    await wait_until(lambda: stack.backend.active == 0)  # the backend's handler was cancelled
    await wait_until(lambda: stack.worker.app[LOAD].requests_working == 0)
    stack.assert_idle()
    outcomes = stack.worker.app[LOAD].outcomes
    assert (outcomes[Outcome.CANCELLED], outcomes[Outcome.ERROR]) == (1, 0)


async def test_a_backend_redirect_is_never_followed_and_gives_502(
    stack: Stack, aiohttp_server: ServerFactory
) -> None:
    """A 307 would repeat the POST, ticketed payload and all, wherever it points."""
    reached: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        reached.append(request.path)
        return web.json_response({"generated_text": "from elsewhere"})

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", elsewhere)
    stack.backend.redirect_to = str((await aiohttp_server(app)).make_url("/internal"))
    stack.backend.mode = "redirect"
    response = await stack.post(
        "/generate", {"auth_data": await stack.ticket(), "payload": PAYLOAD}
    )
    assert response.status == 502
    answer = await response.json()
    assert answer["error_type"] == "backend_unavailable"
    assert "redirect (HTTP 307)" in answer["error"]
    assert reached == []
    stack.assert_idle()


async def test_a_backend_that_is_down_gives_502(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    # A long health interval: the relay, not the health watcher, meets the dead backend.
    async for stack in start_stack(aiohttp_server, tmp_path, FakeTGI(), health_interval_s=60):
        await stack.backend_server.close()
        response = await stack.post(
            "/generate", {"auth_data": await stack.ticket(), "payload": PAYLOAD}
        )
        assert response.status == 502
        assert (await response.json())["error_type"] == "backend_unavailable"
        stack.assert_idle()


@contextlib.contextmanager
def accepting_no_connection(port: int) -> Iterator[None]:
    """A listener on `port` whose accept queue is full: connecting to it hangs."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(0)
    fillers = [socket.socket() for _ in range(3)]
    try:
        for filler in fillers:
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        yield
    finally:
        for sock in (*fillers, listener):
            sock.close()


async def test_a_backend_that_accepts_no_connection_gives_502_after_the_connect_timeout(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    async for stack in start_stack(
        aiohttp_server, tmp_path, FakeTGI(), health_interval_s=60, connect_timeout_s=0.3
    ):
        port = stack.backend_server.port
        assert port is not None
        await stack.backend_server.close()
        with accepting_no_connection(port):
            body = {"auth_data": await stack.ticket(), "payload": PAYLOAD}
            started = time.monotonic()
            response = await stack.post("/generate", body)
            waited = time.monotonic() - started
        assert response.status == 502
        answer = await response.json()
        assert answer["error_type"] == "backend_unavailable"
        assert "no connection within 0.3s" in answer["error"]
        assert 0.3 <= waited < 3
        stack.assert_idle()
