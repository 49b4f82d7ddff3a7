"""Gateway mode in process, over real sockets: the router app proxies to stand-in workers that
answer, refuse, reset, die or stream on cue, so that retries and relaying can be pinned down."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from protocol import (
    WorkerState,
    WorkerStatusReport,
    encode_json_event,
    load_public_key,
    verify_ticket_signature,
)
from protocol.relay import INCOMPLETE_STREAM_EVENT
from router.http.app import DEMAND, REGISTRY, create_app
from router.http.state import CLOCK
from tests import worker_identity
from tests.integration.router.routers import ClientFactory, router_settings
from tests.ports import free_port

API_KEY = "gateway-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
GENERATE = {"inputs": "Hello", "parameters": {"max_new_tokens": 7}}

Behaviour = Literal[
    "ok",
    "busy",
    "reset",
    "stream_dies",  # closes its connection after the first event (EOF before the stream's end)
    "stream_resets",  # resets it (RST) after the first event
    "stream_stalls",  # sends nothing after the first event
    "stream_ends_mid_event",  # ends its answer cleanly, half-way through its second event
    "stream_dies_early",
    "stream_empty",  # ends its answer cleanly before any event
    "slow_start",
    "gzip",  # answers with a gzip-encoded body
    "redirect",  # answers `redirect_status` to `location`
    "huge",  # answers 2 KiB, with its length
    "huge_chunked",  # answers 2 KiB, chunked, with no length
]


@dataclass
class StandInWorker:
    """A worker that records what reached it and behaves as told."""

    name: str
    behaviour: Behaviour = "ok"
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    next_event: asyncio.Event = field(default_factory=asyncio.Event)
    stream_closed: asyncio.Event = field(default_factory=asyncio.Event)
    events: int = 3
    accept_encoding: list[str | None] = field(default_factory=list)
    location: str = ""
    redirect_status: int = 302

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{path:.*}", self.handle)
        app.router.add_get("/{path:.*}", self.metadata)
        return app

    async def metadata(self, request: web.Request) -> web.Response:
        self.received.append((request.path, {"method": request.method}))
        return web.json_response({"path": request.path, "from": self.name})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append((request.path, await request.json()))
        self.accept_encoding.append(request.headers.get("Accept-Encoding"))
        if self.behaviour == "gzip":
            encoded = gzip.compress(json.dumps({"generated_text": f" from {self.name}"}).encode())
            headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
            return web.Response(body=encoded, headers=headers)
        if self.behaviour == "redirect":
            return web.Response(status=self.redirect_status, headers={"Location": self.location})
        if self.behaviour in ("huge", "huge_chunked"):
            return await self.huge(request)
        if self.behaviour == "busy":
            body = {"error": "worker queue is full", "error_type": "overloaded"}
            return web.json_response(body, status=429, headers={"Retry-After": "3"})
        if self.behaviour == "reset":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if request.path == "/generate_stream":
            return await self.stream(request)
        return web.json_response(
            {"generated_text": f" from {self.name}"}, headers={"x-generated-tokens": "7"}
        )

    async def huge(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if self.behaviour == "huge":
            response.content_length = 2048
        await response.prepare(request)
        for _ in range(8):
            await response.write(b" " * 256)
        await response.write_eof()
        return response

    async def stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if self.behaviour == "stream_dies_early":
            assert request.transport is not None
            request.transport.close()
            return response
        if self.behaviour == "stream_empty":
            await response.write_eof()
            return response
        try:
            if self.behaviour == "slow_start":  # the first event waits for its cue too
                await asyncio.wait_for(self.next_event.wait(), 10)
            for index in range(1, self.events + 1):
                event = encode_json_event({"index": index, "token": {"text": f" t{index}"}})
                await response.write(event[:5])  # one event in two writes: the gateway joins them
                await response.write(event[5:])
                if self.behaviour == "stream_dies" and index == 1:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                if self.behaviour == "stream_resets" and index == 1:
                    reset(request)
                    return response
                if self.behaviour == "stream_stalls" and index == 1:
                    await asyncio.sleep(30)  # cancelled when the gateway gives up on it
                if self.behaviour == "stream_ends_mid_event" and index == 1:
                    await response.write(b'data:{"index":2,"tok')
                    await response.write_eof()
                    return response
                if index < self.events:
                    self.next_event.clear()
                    await asyncio.wait_for(self.next_event.wait(), 10)
        except (ConnectionError, asyncio.CancelledError):
            self.stream_closed.set()
            raise
        await response.write_eof()
        return response


def reset(request: web.Request) -> None:
    """Drop the connection with a TCP reset, as a worker that crashed would."""
    assert request.transport is not None
    sock = request.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    request.transport.abort()


@pytest.fixture
async def servers() -> AsyncIterator[list[TestServer]]:
    started: list[TestServer] = []
    yield started
    for server in started:
        await server.close()


async def start(worker: StandInWorker, servers: list[TestServer]) -> str:
    server = TestServer(worker.app())
    await server.start_server()
    servers.append(server)
    return str(server.make_url("")).rstrip("/")


async def router(
    aiohttp_client: ClientFactory, tmp_path: Path, *, private_workers: bool = True, **overrides: Any
) -> TestClient[Any, Any]:
    """A router whose endpoint `default` allows workers on 127.0.0.1, unless told not to."""
    fields: dict[str, Any] = {
        "allow_private_workers": private_workers,
        "api_key": API_KEY,
        "gateway_default_max_new_tokens": 64,
        "gateway_max_body_bytes": 64 * 1024,
        "public_status": True,  # the tests read /status to see the workers' load
    }
    return await aiohttp_client(create_app(router_settings(tmp_path, **{**fields, **overrides})))


async def gateway_with(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer], worker: StandInWorker
) -> TestClient[Any, Any]:
    """A router whose one worker, `worker`, is served and ready behind its gateway."""
    client = await router(aiohttp_client, tmp_path)
    await serve(client, servers, worker)
    return client


async def serve(
    client: TestClient[Any, Any], servers: list[TestServer], worker: StandInWorker, load: float = 0
) -> str:
    """Serve `worker` and report it ready, under its name, with `load` in flight; its URL."""
    url = await start(worker, servers)
    await register(client, worker.name, url, load)
    return url


async def generate(
    client: TestClient[Any, Any], route: str = "generate", endpoint: str = "default"
) -> aiohttp.ClientResponse:
    """POST the usual TGI body with the API key to `/endpoints/{endpoint}/{route}`."""
    return await client.post(f"/endpoints/{endpoint}/{route}", json=GENERATE, headers=AUTH)


async def register(client: TestClient[Any, Any], worker_id: str, url: str, load: float) -> None:
    """A ready worker; the one with the least load is chosen first."""
    report = {"id": worker_id, "url": url, "state": "ready", "max_perf": 100.0}
    report["in_flight_workload"] = load
    response = await worker_identity.report(client, report)
    assert response.status == 200


def register_unchecked(client: TestClient[Any, Any], worker_id: str, url: str) -> None:
    """A ready worker put in the registry as it is, past the checks of registration."""
    app = client.app
    assert app is not None
    report = WorkerStatusReport(id=worker_id, url=url, state=WorkerState.READY, max_perf=100.0)
    app[REGISTRY].apply_report(report, app[CLOCK]())


async def test_a_request_reaches_the_worker_with_a_ticket_for_its_cost(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer]
) -> None:
    client = await router(aiohttp_client, tmp_path)
    worker = StandInWorker("a")
    url = await serve(client, servers, worker)
    response = await generate(client)
    assert response.status == 200
    assert await response.json() == {"generated_text": " from a"}
    assert response.headers["x-generated-tokens"] == "7"
    [(path, envelope)] = worker.received
    assert path == "/generate"
    assert envelope["payload"] == GENERATE
    ticket = envelope["auth_data"]
    assert (ticket["cost"], ticket["url"], ticket["endpoint"]) == (7, url, "default")
    [key] = (await (await client.get("/keys")).json())["keys"]
    assert verify_ticket_signature(load_public_key(key["public_key"]), ticket)


async def test_a_body_is_relayed_undecoded_with_its_content_encoding(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer]
) -> None:
    worker = StandInWorker("a", "gzip")
    client = await gateway_with(aiohttp_client, tmp_path, servers, worker)
    response = await generate(client)
    assert response.status == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert await response.json() == {"generated_text": " from a"}  # decoded here, by the client
    assert worker.accept_encoding == ["identity"]  # the gateway asked for it as it is


@pytest.mark.parametrize(
    ("path", "payload", "cost"),
    [
        ("/v1/chat/completions", {"messages": [], "max_tokens": 5}, 5),
        ("/v1/completions", {"prompt": ["a", "b"], "max_tokens": 3}, 6),
        ("/", {"inputs": "x", "parameters": {"max_new_tokens": 9}, "stream": False}, 9),
        ("", {"inputs": "x"}, 64),  # no max_new_tokens: the configured default
        # every sequence the backend may generate is paid for
        ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 9, "best_of": 2}}, 18),
        ("/v1/chat/completions", {"messages": [], "max_tokens": 5, "n": 3}, 15),
        ("/v1/completions", {"prompt": ["a", "b"], "max_tokens": 3, "n": 2}, 12),
        # the backend ignores max_completion_tokens on /v1/completions: its default counts
        ("/v1/completions", {"prompt": "a", "max_completion_tokens": 3}, 64),
        # SageMaker's route, priced as the route its body stands for
        ("/invocations", {"inputs": "x", "parameters": {"max_new_tokens": 9}}, 9),
        ("/invocations", {"messages": [], "max_tokens": 5, "n": 2}, 10),
        ("/invocations", {"prompt": ["a", "b"], "max_tokens": 3}, 6),
        # the tokenizing routes generate nothing: one token, whatever the prompt
        ("/tokenize", {"inputs": "x" * 5000, "parameters": {"max_new_tokens": 9}}, 1),
        ("/chat_tokenize", {"messages": [{"role": "user", "content": "x"}]}, 1),
    ],
)
async def test_the_cost_comes_from_the_payload(
    aiohttp_client: ClientFactory,
    tmp_path: Path,
    servers: list[TestServer],
    path: str,
    payload: dict[str, Any],
    cost: int,
) -> None:
    worker = StandInWorker("a")
    client = await gateway_with(aiohttp_client, tmp_path, servers, worker)
    response = await client.post(f"/endpoints/default{path}", json=payload, headers=AUTH)
    assert response.status == 200
    [(worker_path, envelope)] = worker.received
    assert worker_path == (path or "/")
    assert envelope["auth_data"]["cost"] == cost


@pytest.mark.parametrize("path", ["/info", "/health", "/v1/models"])
async def test_metadata_is_fetched_from_a_ready_worker_with_no_ticket(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer], path: str
) -> None:
    worker = StandInWorker("a")
    client = await gateway_with(aiohttp_client, tmp_path, servers, worker)
    assert (await client.get(f"/endpoints/default{path}")).status == 401  # the key, as for all
    response = await client.get(f"/endpoints/default{path}", headers=AUTH)
    assert response.status == 200
    assert await response.json() == {"path": path, "from": "a"}
    assert worker.received == [(path, {"method": "GET"})]  # a GET: no envelope, no ticket
    assert await loads_settle_at_zero(client) == {"a": 0}


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "error_type"),
    [
        ("/endpoints/nope/generate", AUTH, json.dumps(GENERATE), 404, "endpoint_not_found"),
        ("/endpoints/default/generate", {}, json.dumps(GENERATE), 401, "unauthorized"),
        (
            "/endpoints/default/generate",
            {"Authorization": "Bearer wrong"},
            json.dumps(GENERATE),
            401,
            "unauthorized",
        ),
        ("/endpoints/default/generate", AUTH, '{"inputs": "x",', 400, "bad_request"),
        ("/endpoints/default/generate", AUTH, '{"inputs": "\\ud800"}', 400, "bad_request"),
        ("/endpoints/default/generate", AUTH, "[1, 2]", 422, "validation"),
        (
            "/endpoints/default/generate",
            AUTH,
            '{"inputs": "x", "parameters": {"max_new_tokens": -3}}',
            422,
            "validation",
        ),
        (
            "/endpoints/default/v1/chat/completions",
            AUTH,
            '{"messages": [], "max_tokens": "many"}',
            422,
            "validation",
        ),
        (
            "/endpoints/default/v1/completions",
            AUTH,
            '{"prompt": ["a", "b"], "max_tokens": 900000}',
            422,
            "validation",
        ),
        (
            "/endpoints/default/generate",
            AUTH,
            '{"inputs": "x", "parameters": {"max_new_tokens": 1' + "0" * 400 + "}}",
            422,
            "validation",
        ),
        ("/endpoints/default/generate", AUTH, "x" * (100 * 1024), 413, "payload_too_large"),
    ],
)
async def test_bad_requests_get_a_json_error_and_reach_no_worker(
    aiohttp_client: ClientFactory,
    tmp_path: Path,
    servers: list[TestServer],
    path: str,
    headers: dict[str, str],
    body: str,
    status: int,
    error_type: str,
) -> None:
    worker = StandInWorker("a")
    client = await gateway_with(aiohttp_client, tmp_path, servers, worker)
    response = await client.post(path, data=body, headers=headers)
    assert response.status == status
    answer = await response.json()
    assert answer["error_type"] == error_type
    assert answer["error"]
    assert worker.received == []


async def test_a_long_prompt_passes_through_over_the_routers_own_body_limit(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer]
) -> None:
    client = await router(aiohttp_client, tmp_path, gateway_max_body_bytes=4 * 1024 * 1024)
    worker = StandInWorker("a")
    await serve(client, servers, worker)
    payload = {**GENERATE, "inputs": "word " * 100_000}  # 500 kB: over /route/'s 64 KiB
    response = await client.post("/endpoints/default/generate", json=payload, headers=AUTH)
    assert response.status == 200
    assert worker.received[0][1]["payload"] == payload


@pytest.mark.parametrize("behaviour", ["busy", "reset", "stream_dies_early", "stream_empty"])
async def test_a_worker_that_fails_before_the_first_byte_is_replaced_and_its_cost_comes_back(
    aiohttp_client: ClientFactory,
    tmp_path: Path,
    servers: list[TestServer],
    behaviour: Behaviour,
) -> None:
    client = await router(aiohttp_client, tmp_path)
    failing, healthy = StandInWorker("failing", behaviour), StandInWorker("healthy", events=1)
    await serve(client, servers, failing)
    await serve(client, servers, healthy, 500)
    path = "/endpoints/default/generate" + ("_stream" if behaviour.startswith("stream") else "")
    response = await client.post(path, json=GENERATE, headers=AUTH)
    assert response.status == 200
    body = await response.read()
    assert b"healthy" in body or b'"index":1' in body
    assert (len(failing.received), len(healthy.received)) == (1, 1)
    current = await loads(client)
    for _ in range(200):
        if current == {"failing": 0, "healthy": 500}:
            break
        await asyncio.sleep(0.01)
        current = await loads(client)
    assert current == {"failing": 0, "healthy": 500}  # 500 is its own report: no ticket left
    kind = {"busy": "status", "reset": "connection", "stream_dies_early": "connection"}
    assert await counted_failures(client) == {kind.get(behaviour, "no_event"): 1.0}


async def test_a_dead_worker_is_replaced_by_another(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer]
) -> None:
    client = await router(aiohttp_client, tmp_path)
    healthy = StandInWorker("healthy")
    await register(client, "dead", f"http://127.0.0.1:{free_port()}", 0)
    await serve(client, servers, healthy, 500)
    response = await generate(client)
    assert response.status == 200
    assert await response.json() == {"generated_text": " from healthy"}
    assert client.app is not None
    assert client.app[DEMAND].take_arrivals() == (7.0, 1)  # the retry is not new demand


@pytest.mark.parametrize("no_worker_reply", ["poll", "retry"])
async def test_the_failed_worker_is_never_tried_again(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer], no_worker_reply: str
) -> None:
    client = await router(aiohttp_client, tmp_path, no_worker_reply=no_worker_reply)
    busy = StandInWorker("busy", "busy")
    await register(client, "busy", await start(busy, servers) + "/", 0)  # URL as reported
    response = await generate(client)
    assert response.status == 429  # its own answer, with its Retry-After
    assert response.headers["Retry-After"] == "3"
    assert (await response.json())["error_type"] == "overloaded"
    assert len(busy.received) == 1


async def test_when_the_only_worker_is_dead_the_answer_is_502_and_its_cost_comes_back(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client = await router(aiohttp_client, tmp_path)
    await register(client, "dead", f"http://127.0.0.1:{free_port()}", 0)
    response = await generate(client)
    assert response.status == 502
    answer = await response.json()
    assert answer["error_type"] == "worker_failed"
    assert "no other worker" in answer["error"]
    assert await loads(client) == {"dead": 0}
    [endpoint] = (await (await client.get("/status")).json())["endpoints"]
    assert [worker["state"] for worker in endpoint["workers"]] == ["failed"]  # out of rotation
    answer = await client.post("/route/", json={"endpoint": "default", "cost": 1}, headers=AUTH)
    assert "url" not in await answer.json()  # no ticket for it until its next report


@pytest.mark.parametrize("no_worker_reply", ["poll", "retry"])
async def test_with_no_worker_the_answer_is_503_with_retry_after(
    aiohttp_client: ClientFactory, tmp_path: Path, no_worker_reply: str
) -> None:
    """Whatever `/route/` answers its own clients (Vast's poll answer, or 503 `unavailable`),
    a gateway client cannot poll: it gets `no_worker`, which says the endpoint is up and has no
    worker ready yet (not `unavailable`, which is a suspended or stopped endpoint's answer)."""
    client = await router(aiohttp_client, tmp_path, no_worker_reply=no_worker_reply)
    response = await generate(client)
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    answer = await response.json()
    assert answer["error_type"] == "no_worker"
    assert "request_idx" not in answer["error"]  # nothing a gateway client could send back


async def test_a_stream_is_relayed_event_by_event(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer]
) -> None:
    worker = StandInWorker("a")
    client = await gateway_with(aiohttp_client, tmp_path, servers, worker)
    response = await generate(client, "generate_stream")
    assert response.status == 200
    assert response.content_type == "text/event-stream"
    received = []
    for index in range(1, 4):
        # the worker sends event n+1 only after the client has event n: nothing is held back
        line = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
        received.append(json.loads(line.removeprefix(b"data:")))
        worker.next_event.set()
        assert received[-1]["index"] == index
    assert await response.content.read() == b""


async def test_a_stream_that_breaks_after_its_first_event_is_not_retried(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer]
) -> None:
    client = await router(aiohttp_client, tmp_path)
    dying, healthy = StandInWorker("dying", "stream_dies"), StandInWorker("healthy")
    await serve(client, servers, dying)
    await serve(client, servers, healthy, 500)
    response = await generate(client, "generate_stream")
    assert response.status == 200
    first = encode_json_event({"index": 1, "token": {"text": " t1"}})
    assert await response.read() == first + INCOMPLETE_STREAM_EVENT
    assert healthy.received == []


async def test_every_endpoint_of_the_management_api_is_served_with_its_own_key(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer]
) -> None:
    client = await router(aiohttp_client, tmp_path, admin_key="admin")
    admin = {"Authorization": "Bearer admin"}
    created = await client.post(
        "/api/v0/endpoints/",
        json={"name": "chat", "api_key": "chat-key", "allow_private_workers": True},
        headers=admin,
    )
    assert created.status == 201, await created.text()
    worker = StandInWorker("c")
    report = {"id": "c", "url": await start(worker, servers), "state": "ready", "endpoint": "chat"}
    assert (await worker_identity.report(client, report)).status == 200

    chat = {"Authorization": "Bearer chat-key"}
    response = await client.post("/endpoints/chat/generate", json=GENERATE, headers=chat)
    assert response.status == 200, await response.text()
    assert worker.received[0][1]["auth_data"]["endpoint"] == "chat"
    response = await generate(client, endpoint="chat")
    assert response.status == 401  # the default endpoint's key is not chat's

    await client.patch(
        "/api/v0/endpoints/chat", json={"endpoint_state": "suspended"}, headers=admin
    )
    response = await client.post("/endpoints/chat/generate", json=GENERATE, headers=chat)
    assert response.status == 503
    assert (await response.json())["error_type"] == "unavailable"
    assert len(worker.received) == 1


async def test_a_client_that_leaves_before_the_first_event_fails_no_worker(
    tmp_path: Path, servers: list[TestServer], caplog: pytest.LogCaptureFixture
) -> None:
    """A write that finds the client gone is nobody's fault: the worker stays in rotation and
    no other worker is asked to answer a client that is not there. The router runs without
    handler cancellation here, so the gateway meets the closed connection itself (in production
    the same happens when the client leaves while a write is under way)."""
    caplog.set_level(logging.INFO, logger="router.gateway.proxy")
    runner, base = await served_router(tmp_path, handler_cancellation=False)
    slow, other = StandInWorker("slow", "slow_start"), StandInWorker("other")
    try:
        async with aiohttp.ClientSession() as session:
            await report_ready(session, runner.app, base, [(slow, 0), (other, 500)], servers)
        leaving = aiohttp.ClientSession()
        url = f"{base}/endpoints/default/generate_stream"
        sent = asyncio.ensure_future(leaving.post(url, json=GENERATE, headers=AUTH))
        for _ in range(500):
            if slow.received:
                break
            await asyncio.sleep(0.01)
        assert slow.received
        sent.cancel()
        await leaving.close()  # the client is gone before any event
        await asyncio.sleep(0.2)
        slow.next_event.set()  # the worker's first event now meets a gateway with no client
        for _ in range(200):
            if slow.stream_closed.is_set():
                break
            await asyncio.sleep(0.01)
        assert slow.stream_closed.is_set()
        await asyncio.sleep(0.2)
        assert other.received == []
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no crashed handler
        assert "client left" in caplog.text
        assert "broke" not in caplog.text  # the worker is not blamed
        async with aiohttp.ClientSession() as session:
            url = f"{base}/endpoints/default/generate"
            async with session.post(url, json=GENERATE, headers=AUTH) as response:
                assert (await response.json())["generated_text"] == " from slow"
    finally:
        await runner.cleanup()


# -- load accounting: a ticket's cost is handed back as soon as its request is over --------------


async def loads(client: TestClient[Any, Any]) -> dict[str, float]:
    """Each worker's expected load (reported + unsettled tickets), as /status shows it."""
    [endpoint] = (await (await client.get("/status")).json())["endpoints"]
    return {worker["id"]: worker["expected_load"] for worker in endpoint["workers"]}


async def loads_settle_at_zero(client: TestClient[Any, Any]) -> dict[str, float]:
    """The loads once the gateway's handler has finished (a stream's end reaches the client a
    moment before the handler returns); bounded: 2 s, far below the ticket's 60 s expiry."""
    for _ in range(200):
        current = await loads(client)
        if not any(current.values()):
            break
        await asyncio.sleep(0.01)
    return current


@pytest.mark.parametrize("path", ["/generate", "/generate_stream"])
async def test_an_answered_request_hands_its_cost_back_at_once(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer], path: str
) -> None:
    worker = StandInWorker("a", events=1)
    client = await gateway_with(aiohttp_client, tmp_path, servers, worker)
    response = await client.post(f"/endpoints/default{path}", json=GENERATE, headers=AUTH)
    assert response.status == 200
    await response.read()
    assert await loads_settle_at_zero(client) == {"a": 0}


async def test_a_worker_that_dies_mid_stream_gets_its_cost_back(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer]
) -> None:
    dying = StandInWorker("dying", "stream_dies")
    client = await gateway_with(aiohttp_client, tmp_path, servers, dying)
    response = await generate(client, "generate_stream")
    assert response.status == 200
    assert (await response.read()).endswith(INCOMPLETE_STREAM_EVENT)
    assert await loads_settle_at_zero(client) == {"dying": 0}


async def test_a_client_that_leaves_mid_stream_closes_the_worker_stream_and_frees_its_cost(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer]
) -> None:
    worker = StandInWorker("a", events=1000)
    client = await gateway_with(aiohttp_client, tmp_path, servers, worker)
    async with aiohttp.ClientSession() as session:
        url = client.make_url("/endpoints/default/generate_stream")
        async with session.post(url, json=GENERATE, headers=AUTH) as response:
            await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
            assert await loads(client) == {"a": 7}  # in flight while the stream runs
    for _ in range(500):  # the worker writes on until the dropped connection stops it
        if worker.stream_closed.is_set():
            break
        worker.next_event.set()
        await asyncio.sleep(0.01)
    assert worker.stream_closed.is_set()
    assert len(worker.received) == 1  # and it was not retried elsewhere
    assert await loads_settle_at_zero(client) == {"a": 0}


async def test_a_cost_already_in_the_workers_report_is_not_handed_back_twice(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer]
) -> None:
    """Once a report covers the ticket (made `ticket_settle_s` after it), the cost is the
    worker's own figure: the end of the request takes nothing more off; its next report does."""
    client = await router(aiohttp_client, tmp_path, ticket_settle_s=0)
    worker = StandInWorker("a", events=2)
    url = await serve(client, servers, worker)
    response = await generate(client, "generate_stream")
    await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
    await register(client, "a", url, 7)  # the worker counts the request: the ticket settles
    assert await loads(client) == {"a": 7}
    worker.next_event.set()
    await response.read()
    await asyncio.sleep(0.1)  # the handler has returned
    assert await loads(client) == {"a": 7}  # not 0, nor -7
    await register(client, "a", url, 0)
    assert await loads(client) == {"a": 0}


# -- a worker whose stream breaks mid-way is out of rotation; a client that leaves blames nobody --


async def states(client: TestClient[Any, Any]) -> dict[str, str]:
    [endpoint] = (await (await client.get("/status")).json())["endpoints"]
    return {worker["id"]: worker["state"] for worker in endpoint["workers"]}


@pytest.mark.parametrize(
    "behaviour", ["stream_dies", "stream_resets", "stream_stalls", "stream_ends_mid_event"]
)
async def test_a_worker_whose_stream_breaks_mid_way_is_routed_to_no_more(
    aiohttp_client: ClientFactory,
    tmp_path: Path,
    servers: list[TestServer],
    behaviour: Behaviour,
) -> None:
    """Closed (EOF before the stream's end), reset, silent past `gateway_idle_timeout_s`, or
    ended inside an event, after its first event: the worker is out of rotation, as one that
    failed before its first byte, although its least load would make it the first choice; its
    next report brings it back."""
    client = await router(aiohttp_client, tmp_path, gateway_idle_timeout_s=0.3)
    broken, healthy = StandInWorker("broken", behaviour), StandInWorker("healthy")
    broken_url = await start(broken, servers)
    await register(client, "broken", broken_url, 0)
    await serve(client, servers, healthy, 500)
    response = await generate(client, "generate_stream")
    assert response.status == 200
    first = encode_json_event({"index": 1, "token": {"text": " t1"}})
    assert await response.read() == first + INCOMPLETE_STREAM_EVENT
    assert await states(client) == {"broken": "failed", "healthy": "ready"}
    kind = "idle_timeout" if behaviour == "stream_stalls" else "broken"
    assert await counted_failures(client) == {kind: 1.0}  # once, whatever came after
    for _ in range(3):
        response = await generate(client)
        assert await response.json() == {"generated_text": " from healthy"}
    assert len(broken.received) == 1
    await register(client, "broken", broken_url, 0)  # its next good report: back in rotation
    response = await generate(client)
    assert await response.json() == {"generated_text": " from broken"}


@pytest.mark.parametrize("handler_cancellation", [True, False])
async def test_a_client_that_leaves_mid_stream_leaves_the_worker_in_rotation(
    tmp_path: Path, servers: list[TestServer], handler_cancellation: bool
) -> None:
    """The client drops its connection after the first event. With handler cancellation (as
    `tgi-serverless router` and `up` run) the handler is cancelled; without it the gateway
    meets the closed connection on its next write. Either way the worker is not to blame: it
    stays ready and gets the next request."""
    runner, base = await served_router(tmp_path, handler_cancellation=handler_cancellation)
    streaming, other = StandInWorker("streaming", events=1000), StandInWorker("other")
    try:
        async with aiohttp.ClientSession() as session:
            workers = [(streaming, 0), (other, 500)]
            await report_ready(session, runner.app, base, workers, servers)
            stream_url = f"{base}/endpoints/default/generate_stream"
            async with session.post(stream_url, json=GENERATE, headers=AUTH) as response:
                await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
                response.connection.transport.abort()  # type: ignore[union-attr]
            for _ in range(500):  # the worker writes on until the dropped connection stops it
                if streaming.stream_closed.is_set():
                    break
                streaming.next_event.set()
                await asyncio.sleep(0.01)
            assert streaming.stream_closed.is_set()
            await asyncio.sleep(0.1)  # the handler has finished
            async with session.get(f"{base}/status") as answer:
                [endpoint] = (await answer.json())["endpoints"]
            assert {w["id"]: w["state"] for w in endpoint["workers"]} == {
                "streaming": "ready",
                "other": "ready",
            }
            generate_url = f"{base}/endpoints/default/generate"
            async with session.post(generate_url, json=GENERATE, headers=AUTH) as response:
                assert await response.json() == {"generated_text": " from streaming"}
        assert other.received == []
    finally:
        await runner.cleanup()


async def served_router(tmp_path: Path, *, handler_cancellation: bool) -> tuple[web.AppRunner, str]:
    """A router on a real port (as `router` and `up` serve it); its runner and base URL."""
    settings = router_settings(
        tmp_path,
        api_key=API_KEY,
        allow_private_workers=True,
        gateway_default_max_new_tokens=64,
        public_status=True,
    )
    runner = web.AppRunner(create_app(settings), handler_cancellation=handler_cancellation)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def report_ready(
    session: aiohttp.ClientSession,
    app: web.Application,
    base: str,
    workers: list[tuple[StandInWorker, int]],
    servers: list[TestServer],
) -> None:
    """Start each worker and report it ready with the given in-flight load."""
    for worker, load in workers:
        url = await start(worker, servers)
        report = {"id": worker.name, "url": url, "state": "ready", "max_perf": 100.0}
        report["in_flight_workload"] = load
        headers = worker_identity.bearer(worker_identity.join_token(app))
        async with session.post(f"{base}/worker_status/", json=report, headers=headers):
            pass


# What the gateway reaches: the worker's origin alone, never through a redirect, never a private
# address unless the endpoint allows it, and no answer beyond its size limit.


@dataclass
class InternalService:
    """Something on the router's own network that no client should reach through it."""

    hits: list[tuple[str, str]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append((request.method, request.path))
        return web.json_response({"secret": "internal"})


async def start_internal(servers: list[TestServer]) -> tuple[InternalService, str]:
    service = InternalService()
    server = TestServer(service.app())
    await server.start_server()
    servers.append(server)
    return service, str(server.make_url("/metadata"))


async def counted_failures(client: TestClient[Any, Any]) -> dict[str, float]:
    """The gateway's worker failures by kind, as the router's `/metrics` shows them."""
    text = await (await client.get("/metrics")).text()
    found = re.findall(
        r'^tgis_gateway_worker_failures_total\{endpoint="default",kind="(\w+)"\} (\S+)$', text, re.M
    )
    return {kind: float(value) for kind, value in found}


async def assert_worker_failed(response: aiohttp.ClientResponse, reason: str) -> None:
    assert response.status == 502
    answer = await response.json()
    assert answer["error_type"] == "worker_failed"
    assert reason in answer["error"]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_the_workers_failure_and_is_never_followed(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer], status: int
) -> None:
    internal, internal_url = await start_internal(servers)
    worker = StandInWorker("a", "redirect", location=internal_url, redirect_status=status)
    client = await gateway_with(aiohttp_client, tmp_path, servers, worker)
    response = await generate(client)
    await assert_worker_failed(response, f"redirect (HTTP {status})")
    assert await loads_settle_at_zero(client) == {"a": 0}  # the ticket's cost is back
    assert internal.hits == []
    assert len(worker.received) == 1
    assert await states(client) == {"a": "failed"}  # out of rotation until its next report
    assert await counted_failures(client) == {"redirect": 1.0}


@pytest.mark.parametrize("suffix", ["#", "?", "/?to=", "/#", "/prefix?x=1#y"])
async def test_what_a_worker_url_ends_with_cannot_swallow_the_path(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer], suffix: str
) -> None:
    # Registration refuses such URLs (tests/unit/router/routing/test_worker_url.py); the
    # gateway does not rely on it: one in the registry still reaches only its origin.
    client = await router(aiohttp_client, tmp_path)
    worker = StandInWorker("a")
    register_unchecked(client, "a", await start(worker, servers) + suffix)
    response = await client.post(
        "/endpoints/default/v1/completions", json={"prompt": "x"}, headers=AUTH
    )
    assert response.status == 200
    [(path, envelope)] = worker.received
    assert path == "/v1/completions"
    assert envelope["payload"] == {"prompt": "x"}


@pytest.mark.parametrize("behaviour", ["huge", "huge_chunked"])
async def test_an_answer_over_the_size_limit_is_the_workers_failure(
    aiohttp_client: ClientFactory,
    tmp_path: Path,
    servers: list[TestServer],
    behaviour: Behaviour,
) -> None:
    client = await router(aiohttp_client, tmp_path, gateway_max_answer_bytes=1024)
    await serve(client, servers, StandInWorker("a", behaviour))
    response = await generate(client)
    await assert_worker_failed(response, "over the 1024-byte limit")
    assert await loads_settle_at_zero(client) == {"a": 0}  # the ticket's cost is back
    assert await counted_failures(client) == {"too_large": 1.0}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])  # an address, and a name for it
async def test_a_private_worker_is_refused_unless_its_endpoint_allows_private_workers(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer], host: str
) -> None:
    # Registration refuses these URLs; the gateway checks the address it connects to as well
    # (a public name may resolve to a private address), so a worker in the registry is refused.
    client = await router(aiohttp_client, tmp_path, private_workers=False, admin_key="admin")
    worker = StandInWorker("a")
    url = (await start(worker, servers)).replace("127.0.0.1", host)
    register_unchecked(client, "a", url)
    response = await generate(client)
    await assert_worker_failed(response, "is not a public address")
    assert worker.received == []
    assert await counted_failures(client) == {"address": 1.0}

    allow = {"allow_private_workers": True}
    admin = {"Authorization": "Bearer admin"}
    assert (await client.patch("/api/v0/endpoints/default", json=allow, headers=admin)).ok
    register_unchecked(client, "a", url)  # back in rotation
    response = await generate(client)
    assert response.status == 200
    assert len(worker.received) == 1


async def test_no_cookie_a_worker_sets_goes_back_to_any_worker(
    aiohttp_client: ClientFactory, tmp_path: Path, servers: list[TestServer]
) -> None:
    sent: list[str | None] = []

    async def handle(request: web.Request) -> web.Response:
        sent.append(request.headers.get("Cookie"))
        response = web.json_response({"generated_text": " x"})
        response.set_cookie("worker_session", "from-a-worker")
        return response

    app = web.Application()
    app.router.add_post("/{path:.*}", handle)
    server = TestServer(app)
    await server.start_server()
    servers.append(server)
    client = await router(aiohttp_client, tmp_path)
    # a name, not an IP address: aiohttp's own jar would keep this one
    await register(client, "a", f"http://localhost:{server.port}", 0)
    for _ in range(2):
        assert (await generate(client)).status == 200
    assert sent == [None, None]
