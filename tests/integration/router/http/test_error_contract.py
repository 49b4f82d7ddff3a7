"""The router's error contract: a real request for each status of `tests.error_contract`, and
the one JSON answer of docs/errors.md for each (the gateway's are in `router/gateway`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from protocol import ErrorType
from router.http.app import ADMISSION, create_app
from tests.error_contract import Call, Expected, check_answer, contract_cases
from tests.integration.router.routers import ClientFactory, router_settings

API_KEY = "contract-api-key"
WORKER_TOKEN = "contract-worker-token"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
BODY_LIMIT = 1024


def route(body: object, headers: dict[str, str] = AUTH) -> Call:
    return Call("POST", "/route/", json.dumps(body).encode(), headers)


CASES = contract_cases(
    [
        (
            Call("POST", "/route/", b'{"endpoint": ', AUTH),
            Expected(400, ErrorType.BAD_REQUEST),
        ),
        (
            route({"endpoint": "default"}, {"Authorization": "Bearer wrong"}),
            Expected(401, ErrorType.UNAUTHORIZED),
        ),
        (  # a report from a worker this router did not start
            Call(
                "POST",
                "/worker_status/",
                json.dumps({"id": "stranger", "url": "http://127.0.0.1:9"}).encode(),
                {"Authorization": f"Bearer {WORKER_TOKEN}"},
            ),
            Expected(403, ErrorType.FORBIDDEN),
        ),
        (Call("GET", "/nowhere"), Expected(404, ErrorType.NOT_FOUND)),
        (route({"endpoint": "nope"}), Expected(404, ErrorType.ENDPOINT_NOT_FOUND)),
        (Call("GET", "/route/"), Expected(405, ErrorType.METHOD_NOT_ALLOWED, allow="POST")),
        (
            route({"endpoint": "default", "padding": "x" * BODY_LIMIT}),
            Expected(413, ErrorType.PAYLOAD_TOO_LARGE),
        ),
        (route({"endpoint": "default", "cost": -1}), Expected(422, ErrorType.VALIDATION)),
        (  # no worker, and no room to wait for one
            route({"endpoint": "default"}),
            Expected(429, ErrorType.OVERLOADED, retry_after=True),
        ),
    ]
)


@pytest.fixture
async def client(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient[Any, Any]:
    settings = router_settings(
        tmp_path,
        api_key=API_KEY,
        worker_token=WORKER_TOKEN,
        allow_anonymous_workers=True,
        accept_unknown_workers=False,
        max_waiting_routes=0,
        max_body_bytes=BODY_LIMIT,
    )
    app = create_app(settings)
    app[ADMISSION] = lambda worker_id: False  # as `up` admits only the workers it started
    return await aiohttp_client(app)


@pytest.mark.parametrize(("call", "expected"), CASES)
async def test_each_error_is_the_one_json_answer(
    client: TestClient[Any, Any], call: Call, expected: Expected
) -> None:
    response = await client.request(call.method, call.path, data=call.body, headers=call.headers)
    await check_answer(response, expected)
