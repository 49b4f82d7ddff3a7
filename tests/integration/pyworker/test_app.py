"""The PyWorker in process, between the real router app and a scriptable fake TGI.

Every case checks the status, the JSON reason, whether the payload reached the backend, and
that the worker's in-flight counters are back to zero afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from protocol import SigningKey, WorkerState, sign_ticket
from pyworker.app import LIFECYCLE, LOAD, create_app
from pyworker.load import Outcome
from pyworker.settings import WorkerSettings
from router.http.app import create_app as create_router_app
from router.settings import RouterSettings
from tests.fakes.fake_tgi import FakeTGI, expected_stream
from tests.ports import free_port

API_KEY = "k"
WORKER_TOKEN = "t"
PAYLOAD = {"inputs": "Hello", "parameters": {"max_new_tokens": 3}}

ServerFactory = Callable[..., Awaitable[TestServer]]


@dataclass
class Stack:
    router: TestServer
    worker: TestServer
    backend: FakeTGI
    backend_server: TestServer
    key: SigningKey
    http: aiohttp.ClientSession

    @property
    def worker_url(self) -> str:
        return str(self.worker.make_url("")).rstrip("/")

    async def ticket(self, cost: float = 3) -> dict[str, Any]:
        body = {"endpoint": "default", "cost": cost}
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with self.http.post(self.router.make_url("/route/"), json=body, headers=headers) as r:
            assert r.status == 200
            ticket: dict[str, Any] = await r.json()
        assert "url" in ticket, ticket
        return ticket

    def forge(self, **fields: Any) -> dict[str, Any]:
        base = {
            "cost": 100,
            "endpoint": "default",
            "reqnum": 10**15,
            "url": self.worker_url,
            "request_idx": 1,
            "exp": time.time() + 60,
            "kid": self.key.kid,
        }
        return sign_ticket(self.key.private_key, {**base, **fields})

    async def post(self, path: str, body: Any) -> aiohttp.ClientResponse:
        return await self.http.post(f"{self.worker_url}{path}", json=body)

    def assert_idle(self) -> None:
        load = self.worker.app[LOAD]
        assert (load.in_flight_workload, load.requests_working) == (0, 0)


async def start_stack(
    aiohttp_server: ServerFactory,
    tmp_path: Path,
    backend: FakeTGI,
    *,
    router_fields: dict[str, Any] | None = None,
    **worker_fields: Any,
) -> AsyncIterator[Stack]:
    """A router (`router_fields` add to or replace its settings), a ready worker with
    `worker_fields`, and `backend` behind it."""
    key = SigningKey.generate()
    router_settings = RouterSettings(
        **{
            "api_key": API_KEY,
            "worker_token": WORKER_TOKEN,
            "state_dir": tmp_path,
            "route_timeout_s": 5,
            **(router_fields or {}),
        }
    )
    router = await aiohttp_server(create_router_app(router_settings, signing_key=key))
    backend_server = await aiohttp_server(backend.app())
    port = free_port()
    fields: dict[str, Any] = {
        "port": port,
        "backend_url": str(backend_server.make_url("")).rstrip("/"),
        "report_addr": str(router.make_url("")).rstrip("/"),
        "public_url": f"http://127.0.0.1:{port}",
        "worker_id": "w1",
        "worker_token": WORKER_TOKEN,
        "report_interval_s": 0.2,
        "health_interval_s": 0.2,
        "benchmark_tokens": 3,
    }
    settings = WorkerSettings(**{**fields, **worker_fields})
    worker = await aiohttp_server(create_app(settings), port=port)
    async with aiohttp.ClientSession() as http:
        stack = Stack(router, worker, backend, backend_server, key, http)
        await wait_until(lambda: worker.app[LIFECYCLE].serving)
        backend.received.clear()  # forget the start-up benchmark
        yield stack


async def wait_until(condition: Callable[[], bool], limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.fixture
async def stack(aiohttp_server: ServerFactory, tmp_path: Path) -> AsyncIterator[Stack]:
    async for running in start_stack(aiohttp_server, tmp_path, FakeTGI()):
        yield running


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


async def test_the_worker_reported_ready_with_a_measured_perf(stack: Stack) -> None:
    async with stack.http.get(stack.router.make_url("/status")) as response:
        [worker] = (await response.json())["endpoints"][0]["workers"]
    assert worker["state"] == "ready"
    assert worker["max_perf"] > 0
    assert worker["url"] == stack.worker_url


@pytest.mark.parametrize(
    ("make_ticket", "status", "reason"),
    [
        (lambda s: {**s.forge(), "cost": 10**6}, 401, "bad_signature"),
        (lambda s: s.forge(exp=time.time() - 60), 401, "expired"),
        (lambda s: s.forge(url="http://127.0.0.1:1"), 403, "wrong_url"),
        (lambda s: s.forge(cost=2), 403, "cost_too_low"),
        (lambda s: sign_ticket(SigningKey.generate().private_key, s.forge()), 401, "bad_signature"),
        (lambda s: {"cost": 3}, 401, "malformed"),
        (lambda s: "let me in", 401, "malformed"),
    ],
)
async def test_bad_tickets_never_reach_the_backend(
    stack: Stack, make_ticket: Callable[[Stack], Any], status: int, reason: str
) -> None:
    for path in ("/generate", "/generate_stream"):
        response = await stack.post(path, {"auth_data": make_ticket(stack), "payload": PAYLOAD})
        assert response.status == status
        body = await response.json()
        assert (body["reason"], body["error_type"]) == (reason, "ticket_rejected")
    assert stack.backend.received == []
    stack.assert_idle()


async def test_a_replayed_ticket_is_refused(stack: Stack) -> None:
    body = {"auth_data": await stack.ticket(), "payload": PAYLOAD}
    assert (await stack.post("/generate", body)).status == 200
    replay = await stack.post("/generate", body)
    assert replay.status == 403
    assert (await replay.json())["reason"] == "replayed"
    assert len(stack.backend.payloads("/generate")) == 1
    stack.assert_idle()


async def test_a_payload_without_max_new_tokens_costs_the_backends_maximum(stack: Stack) -> None:
    payload = {"inputs": "Hello"}
    response = await stack.post(
        "/generate", {"auth_data": await stack.ticket(100), "payload": payload}
    )
    assert response.status == 403
    assert "2048" in (await response.json())["error"]
    ok = await stack.post("/generate", {"auth_data": await stack.ticket(2048), "payload": payload})
    assert ok.status == 200


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"{not json", 400),
        (b"\xff", 400),
        (b"[" * 100_000, 400),  # nested past both parsers' depth limits
        (b"[1]", 422),
        (b'{"payload": {"inputs": "x"}}', 401),
        (b'{"auth_data": {}, "payload": "x"}', 422),
        (b'{"auth_data": {}, "payload": {"parameters": {"max_new_tokens": "9"}}}', 422),
    ],
)
async def test_malformed_requests_get_a_json_4xx(stack: Stack, raw: bytes, status: int) -> None:
    response = await stack.http.post(f"{stack.worker_url}/generate", data=raw)
    assert response.status == status
    assert (await response.json())["error"]
    assert stack.backend.received == []
    stack.assert_idle()


async def test_a_payload_too_deep_to_relay_is_a_400(stack: Stack) -> None:
    """Read (orjson reads 1024 levels), but deeper than `json` writes it to the backend."""
    deep = b"[" * 1010 + b"]" * 1010
    ticket = json.dumps(await stack.ticket()).encode()
    payload = json.dumps(PAYLOAD).encode()[:-1] + b',"x":' + deep + b"}"
    raw = b'{"auth_data":' + ticket + b',"payload":' + payload + b"}"
    response = await stack.http.post(f"{stack.worker_url}/generate", data=raw)
    assert response.status == 400
    assert "nested too deeply" in (await response.json())["error"]
    assert stack.backend.received == []
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


async def test_a_huge_body_is_413(stack: Stack) -> None:
    huge = json.dumps({"auth_data": {}, "payload": {"inputs": "x" * 5_000_000}}).encode()
    response = await stack.http.post(f"{stack.worker_url}/generate", data=io.BytesIO(huge))
    assert response.status == 413
    assert "limit" in (await response.json())["error"]
    assert stack.backend.received == []
    stack.assert_idle()


def padded_body(ticket: dict[str, Any], size: int) -> bytes:
    """An envelope of exactly `size` bytes: the prompt is padded to fit."""
    empty = json.dumps({"auth_data": ticket, "payload": {**PAYLOAD, "inputs": ""}}).encode()
    padding = "x" * (size - len(empty))
    body = json.dumps({"auth_data": ticket, "payload": {**PAYLOAD, "inputs": padding}}).encode()
    assert len(body) == size
    return body


async def test_the_body_limit_is_exact_and_holds_without_a_content_length(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    limit = 4096
    async for stack in start_stack(aiohttp_server, tmp_path, FakeTGI(), max_body_bytes=limit):
        url = f"{stack.worker_url}/generate"
        at_limit = padded_body(await stack.ticket(), limit)
        assert (await stack.http.post(url, data=at_limit)).status == 200
        over = padded_body(await stack.ticket(), limit + 1)
        refused = await stack.http.post(url, data=over)
        assert refused.status == 413
        body = await refused.json()
        assert body["error_type"] == "payload_too_large"
        assert str(limit) in body["error"]

        async def chunks() -> AsyncIterator[bytes]:  # chunked upload: no Content-Length
            for _ in range(64):
                yield b" " * 1024

        streamed = await stack.http.post(url, data=chunks())
        assert streamed.status == 413
        assert len(stack.backend.payloads("/generate")) == 1
        stack.assert_idle()


async def test_unknown_paths_and_methods_are_json(stack: Stack) -> None:
    wrong_method = await stack.http.get(f"{stack.worker_url}/generate")
    assert wrong_method.status == 405
    assert (await wrong_method.json())["error_type"] == "method_not_allowed"
    missing = await stack.http.post(f"{stack.worker_url}/nope", json={})
    assert missing.status == 404
    assert (await missing.json())["error_type"] == "not_found"


@pytest.mark.parametrize("path", ["/generate", "/generate_stream"])
async def test_backend_error_bodies_pass_through(stack: Stack, path: str) -> None:
    stack.backend.mode = "error_422"
    response = await stack.post(path, {"auth_data": await stack.ticket(), "payload": PAYLOAD})
    assert response.status == 422
    assert response.headers["Content-Type"].startswith("application/json")
    assert await response.json() == {
        "error": "Input validation error: `top_p` bad",
        "error_type": "validation",
    }
    assert stack.worker.app[LOAD].outcomes[Outcome.SUCCESS] == 1  # the client's fault
    stack.assert_idle()


@pytest.mark.parametrize("path", ["/generate", "/generate_stream"])
async def test_a_backend_500_is_relayed_and_counted_as_an_error(stack: Stack, path: str) -> None:
    stack.backend.mode = "error_500"
    response = await stack.post(path, {"auth_data": await stack.ticket(), "payload": PAYLOAD})
    assert response.status == 500
    assert (await response.json())["error"] == "boom"
    assert stack.worker.app[LOAD].outcomes[Outcome.ERROR] == 1
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


async def test_a_worker_that_is_not_ready_answers_503(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    key = SigningKey.generate()
    router_settings = RouterSettings(api_key=API_KEY, state_dir=tmp_path)
    router = await aiohttp_server(create_router_app(router_settings, signing_key=key))
    port = free_port()
    settings = WorkerSettings(
        port=port,
        backend_url=f"http://127.0.0.1:{free_port()}",  # never healthy
        report_addr=str(router.make_url("")).rstrip("/"),
        public_url=f"http://127.0.0.1:{port}",
        worker_id="w1",
    )
    worker = await aiohttp_server(create_app(settings), port=port)
    async with aiohttp.ClientSession() as http:
        await wait_until(lambda: worker.app[LIFECYCLE].state.value == "loading")
        health = await http.get(f"http://127.0.0.1:{port}/health")
        assert health.status == 503
        ticket = sign_ticket(
            key.private_key,
            {
                "cost": 3,
                "endpoint": "default",
                "reqnum": 1,
                "url": settings.advertised_url,
                "request_idx": 1,
                "exp": time.time() + 60,
                "kid": key.kid,
            },
        )
        response = await http.post(
            f"http://127.0.0.1:{port}/generate", json={"auth_data": ticket, "payload": PAYLOAD}
        )
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert (await response.json())["error_type"] == "not_ready"


async def test_a_draining_worker_refuses_new_requests(stack: Stack) -> None:
    stack.worker.app[LIFECYCLE].move_to(WorkerState.DRAINING)  # the router routes here no more
    response = await stack.post("/generate", {"auth_data": stack.forge(), "payload": PAYLOAD})
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert "draining" in (await response.json())["error"]
    assert stack.backend.received == []
    stack.assert_idle()


async def test_a_failing_backend_takes_the_worker_out_until_it_recovers(stack: Stack) -> None:
    async def router_sees(state: str, error_msg: str) -> bool:
        async with stack.http.get(stack.router.make_url("/status")) as response:
            [worker] = (await response.json())["endpoints"][0]["workers"]
        return (worker["state"], worker["error_msg"]) == (state, error_msg)

    async def eventually(state: str, error_msg: str = "") -> None:
        deadline = time.monotonic() + 10
        while not await router_sees(state, error_msg):
            assert time.monotonic() < deadline, f"router never saw {state}"
            await asyncio.sleep(0.05)

    stack.backend.healthy = False
    await eventually("error", "backend /health is failing")
    stack.backend.healthy = True
    await eventually("ready")
