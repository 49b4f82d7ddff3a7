"""The PyWorker app in process (`pyworker/app.py`, `pyworker/routes.py`), between the real router
app and a scriptable fake TGI: a request's checks in order, readiness, the drain.

Every case checks the status, the JSON reason, whether the payload reached the backend, and
that the worker's in-flight counters are back to zero afterwards.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from protocol import SigningKey, WorkerState, sign_ticket
from pyworker.app import create_app
from pyworker.settings import WorkerSettings
from pyworker.state import LIFECYCLE, LOAD, VERIFIER
from router.http.app import create_app as create_router_app
from router.settings import RouterSettings
from tests.fakes.fake_tgi import FakeTGI
from tests.integration.pyworker.stack import (
    API_KEY,
    PAYLOAD,
    ServerFactory,
    Stack,
    start_stack,
    wait_until,
)
from tests.ports import free_port


async def test_the_worker_reported_ready_with_a_measured_perf(stack: Stack) -> None:
    # The worker serves once its backend is ready; its report saying so may still be in flight.
    deadline = time.monotonic() + 10
    while True:
        async with stack.http.get(stack.router.make_url("/status")) as response:
            [worker] = (await response.json())["endpoints"][0]["workers"]
        if worker["state"] == "ready" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
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
    "payload",
    [
        {"inputs": "x", "parameters": {"max_new_tokens": 10**400}},
        {"inputs": "x", "parameters": {"max_new_tokens": 10**7}},
        {"messages": [], "max_tokens": 1000, "n": 10**6},
    ],
)
@pytest.mark.parametrize("unsecured", [False, True])
async def test_a_workload_no_ticket_can_pay_for_is_a_422(
    aiohttp_server: ServerFactory, tmp_path: Path, payload: dict[str, Any], unsecured: bool
) -> None:
    """Over `MAX_COST`, a workload of 400 digits included: a 422 (it was a 500, with the worker
    left busy, from a float that cannot hold it), and the backend never hears of it."""
    async for stack in start_stack(aiohttp_server, tmp_path, FakeTGI(), unsecured=unsecured):
        path = "/v1/chat/completions" if "messages" in payload else "/generate"
        ticket = json.dumps(stack.forge(cost=100)).encode()
        raw = b'{"auth_data":' + ticket + b',"payload":' + json.dumps(payload).encode() + b"}"
        response = await stack.http.post(f"{stack.worker_url}{path}", data=raw)
        assert response.status == 422
        answer = await response.json()
        assert answer["error_type"] == "validation"
        assert "ask for fewer" in answer["error"]
        assert stack.backend.received == []
        stack.assert_idle()
        assert stack.worker.app[LOAD].idle.is_set()


async def test_every_best_of_candidate_is_paid_for(stack: Stack) -> None:
    payload = {"inputs": "x", "parameters": {"max_new_tokens": 7, "best_of": 2, "do_sample": True}}
    response = await stack.post(
        "/generate", {"auth_data": await stack.ticket(7), "payload": payload}
    )
    assert response.status == 403
    assert (await response.json())["reason"] == "cost_too_low"
    ok = await stack.post("/generate", {"auth_data": await stack.ticket(14), "payload": payload})
    assert ok.status == 200
    assert stack.backend.payloads("/generate") == [payload]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"{not json", 400),
        (b"\xff", 400),
        (b"[" * 100_000, 400),  # nested past both parsers' depth limits
        (b"[1]", 422),
        (b'{"payload": {"inputs": "x"}}', 401),
        (b'{"auth_data": {}, "payload": "x"}', 401),  # the ticket is checked first
        (b'{"auth_data": {}, "payload": {"parameters": {"max_new_tokens": "9"}}}', 401),
    ],
)
async def test_malformed_requests_get_a_json_4xx(stack: Stack, raw: bytes, status: int) -> None:
    response = await stack.http.post(f"{stack.worker_url}/generate", data=raw)
    assert response.status == status
    assert (await response.json())["error"]
    assert stack.backend.received == []
    stack.assert_idle()


@pytest.mark.parametrize("payload", ["x", {"inputs": "x", "parameters": {"max_new_tokens": "9"}}])
async def test_the_ticket_is_checked_before_the_payload(stack: Stack, payload: Any) -> None:
    """A forged ticket is refused whatever the payload: no one without a ticket gets the
    payload's validation, nor its workload computed."""
    forged = {**await stack.ticket(), "cost": 10**6}
    response = await stack.post("/generate", {"auth_data": forged, "payload": payload})
    assert response.status == 401
    assert (await response.json())["reason"] == "bad_signature"
    assert stack.backend.received == []
    stack.assert_idle()


async def test_a_valid_ticket_with_an_invalid_payload_is_a_422_and_is_not_spent(
    stack: Stack,
) -> None:
    ticket = await stack.ticket()
    bad = {"inputs": "x", "parameters": {"max_new_tokens": "9"}}
    refused = await stack.post("/generate", {"auth_data": ticket, "payload": bad})
    assert refused.status == 422
    assert (await stack.post("/generate", {"auth_data": ticket, "payload": PAYLOAD})).status == 200
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


async def test_a_worker_that_is_not_ready_answers_503(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    key = SigningKey.generate()
    router_settings = RouterSettings(api_key=API_KEY, state_dir=tmp_path, public_status=True)
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
                "epoch": worker.app[VERIFIER].epoch,
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
