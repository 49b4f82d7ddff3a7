"""The PyWorker's error contract: a real request for each status of `tests.error_contract`, and
the one JSON answer of docs/errors.md for each. Its 401 and 403 are ticket rejections, with the
`reason` that names the check."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from protocol import ErrorType
from pyworker.state import LOAD
from tests.error_contract import Expected, check_answer, contract_cases
from tests.fakes.fake_tgi import FakeTGI
from tests.integration.pyworker.stack import (
    PAYLOAD,
    ServerFactory,
    Stack,
    start_stack,
    wait_until,
)

BODY_LIMIT = 4096


@dataclass(frozen=True)
class WorkerCall:
    """A request to the worker; `body(stack)` gives its body (a JSON document, or raw bytes);
    `busy`: another request's work is in flight meanwhile."""

    method: str
    path: str
    body: Callable[[Stack], Any] = lambda stack: None
    busy: bool = False


def envelope(make: Callable[[Stack], Any]) -> Callable[[Stack], Any]:
    return lambda stack: {"auth_data": make(stack), "payload": PAYLOAD}


CASES = contract_cases(
    [
        (
            WorkerCall("POST", "/generate", lambda s: b"{not json"),
            Expected(400, ErrorType.BAD_REQUEST),
        ),
        (
            WorkerCall("POST", "/generate", lambda s: {"payload": PAYLOAD}),
            Expected(401, ErrorType.TICKET_REJECTED, reason="missing"),
        ),
        (
            WorkerCall("POST", "/generate", envelope(lambda s: s.forge(url="http://127.0.0.1:1"))),
            Expected(403, ErrorType.TICKET_REJECTED, reason="wrong_url"),
        ),
        (WorkerCall("POST", "/nowhere", lambda s: {}), Expected(404, ErrorType.NOT_FOUND)),
        (
            WorkerCall("GET", "/generate_stream"),
            Expected(405, ErrorType.METHOD_NOT_ALLOWED, allow="POST"),
        ),
        (
            WorkerCall("POST", "/generate", lambda s: b" " * (BODY_LIMIT + 1)),
            Expected(413, ErrorType.PAYLOAD_TOO_LARGE),
        ),
        (
            WorkerCall("POST", "/generate", lambda s: {"auth_data": s.forge(), "payload": "x"}),
            Expected(422, ErrorType.VALIDATION),
        ),
        (  # the expected wait (3 tokens at 1 token/s) is over max_queue_time (1 s)
            WorkerCall("POST", "/generate", envelope(lambda s: s.forge()), busy=True),
            Expected(429, ErrorType.OVERLOADED, retry_after=True),
        ),
    ]
)


@pytest.fixture
async def stack(aiohttp_server: ServerFactory, tmp_path: Path) -> AsyncIterator[Stack]:
    async for running in start_stack(
        aiohttp_server, tmp_path, FakeTGI(), max_body_bytes=BODY_LIMIT, max_queue_time_s=1
    ):
        yield running


@pytest.mark.parametrize(("call", "expected"), CASES)
async def test_each_error_is_the_one_json_answer(
    stack: Stack, call: WorkerCall, expected: Expected
) -> None:
    gate = asyncio.Event()
    held = await hold_one_request(stack, gate) if call.busy else None
    body = call.body(stack)
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    response = await stack.http.request(call.method, f"{stack.worker_url}{call.path}", data=data)
    await check_answer(response, expected)
    gate.set()
    if held is not None:
        assert (await held).status == 200
    assert stack.backend.payloads(call.path) == ([PAYLOAD] if held else [])
    stack.assert_idle()


async def hold_one_request(stack: Stack, gate: asyncio.Event) -> asyncio.Task[Any]:
    """One request held at the backend until `gate` opens: 3 tokens in flight at 1 token/s."""
    stack.backend.gate = gate
    stack.worker.app[LOAD].capacity.start_from(1.0, saturation_requests=1)
    body = {"auth_data": await stack.ticket(), "payload": PAYLOAD}
    held = asyncio.create_task(stack.post("/generate", body))
    await wait_until(lambda: stack.worker.app[LOAD].requests_working == 1)
    return held
