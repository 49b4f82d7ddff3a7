"""The gateway's error contract: a real request for each status of `tests.error_contract`, with
a real PyWorker (before a fake TGI) behind it, and the one JSON answer of docs/errors.md for each.

The gateway answers its own errors as the router does; the worker's answers that are the
request's own pass through unchanged. A 403 reaches a gateway client only that way: a request
that names no `max_new_tokens` costs the gateway's default (64 here), less than the worker
counts for it (its backend's `max_total_tokens`, 2048), and the worker refuses the ticket.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from protocol import ErrorType
from tests.error_contract import Call, Expected, check_answer, contract_cases
from tests.fakes.fake_tgi import FakeTGI
from tests.integration.pyworker.stack import API_KEY, ServerFactory, Stack, start_stack

ADMIN_KEY = "contract-admin-key"
IDLE_KEY = "idle-endpoint-key"  # an endpoint with no worker
AUTH = {"Authorization": f"Bearer {API_KEY}"}
BODY_LIMIT = 1024


def generate(body: object, headers: dict[str, str] = AUTH, endpoint: str = "default") -> Call:
    return Call("POST", f"/endpoints/{endpoint}/generate", json.dumps(body).encode(), headers)


CASES = contract_cases(
    [
        (
            Call("POST", "/endpoints/default/generate", b'{"inputs": "x",', AUTH),
            Expected(400, ErrorType.BAD_REQUEST),
        ),
        (generate({"inputs": "x"}, headers={}), Expected(401, ErrorType.UNAUTHORIZED)),
        (  # the worker's refusal, relayed
            generate({"inputs": "x"}),
            Expected(403, ErrorType.TICKET_REJECTED, reason="cost_too_low"),
        ),
        (generate({"inputs": "x"}, endpoint="nope"), Expected(404, ErrorType.ENDPOINT_NOT_FOUND)),
        (
            Call("POST", "/endpoints/default/nowhere", b"{}", AUTH),
            Expected(404, ErrorType.NOT_FOUND),
        ),
        (
            Call("GET", "/endpoints/default/generate", headers=AUTH),
            Expected(405, ErrorType.METHOD_NOT_ALLOWED, allow="POST"),
        ),
        (
            generate({"inputs": "x" * BODY_LIMIT}),
            Expected(413, ErrorType.PAYLOAD_TOO_LARGE),
        ),
        (
            generate({"inputs": "x", "parameters": {"max_new_tokens": -3}}),
            Expected(422, ErrorType.VALIDATION),
        ),
        (  # no worker for that endpoint, and no room to wait for one
            generate({"inputs": "x"}, {"Authorization": f"Bearer {IDLE_KEY}"}, endpoint="idle"),
            Expected(429, ErrorType.OVERLOADED, retry_after=True),
        ),
    ]
)


@pytest.fixture
async def stack(aiohttp_server: ServerFactory, tmp_path: Path) -> AsyncIterator[Stack]:
    router_fields = {
        "admin_key": ADMIN_KEY,
        "gateway_default_max_new_tokens": 64,
        "gateway_max_body_bytes": BODY_LIMIT,
        "max_waiting_routes": 0,
    }
    async for running in start_stack(
        aiohttp_server, tmp_path, FakeTGI(), router_fields=router_fields
    ):
        created = await running.http.post(
            running.router.make_url("/api/v0/endpoints/"),
            json={"name": "idle", "api_key": IDLE_KEY},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert created.status == 201
        yield running


@pytest.mark.parametrize(("call", "expected"), CASES)
async def test_each_error_is_the_one_json_answer(
    stack: Stack, call: Call, expected: Expected
) -> None:
    url = stack.router.make_url(call.path)
    response = await stack.http.request(call.method, url, data=call.body, headers=call.headers)
    await check_answer(response, expected)
    assert stack.backend.received == []
    stack.assert_idle()
