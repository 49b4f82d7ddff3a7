"""The PyWorker's OpenAPI document, and schemathesis against it, with made-up tickets (each
refused: 401/403) and with valid ones (the payload reaches the checks behind the ticket's):
no 5xx, answers that conform."""

from __future__ import annotations

import itertools
from typing import Any

from schemathesis.generation.case import Case

from pyworker.openapi import OPERATIONS
from tests.integration.pyworker.stack import Stack
from tests.openapi_fuzz import fuzz, served_routes


async def _document(stack: Stack) -> dict[str, Any]:
    async with stack.http.get(f"{stack.worker_url}/openapi.json") as response:
        assert response.status == 200
        document: dict[str, Any] = await response.json()
    return document


async def test_the_document_names_only_routes_the_worker_serves(stack: Stack) -> None:
    document = await _document(stack)
    served = served_routes(stack.worker.app)
    assert {(op.method, op.path) for op in OPERATIONS} <= served
    envelope = document["components"]["schemas"]["GenerateEnvelope"]
    assert envelope["properties"]["payload"] == {"$ref": "#/components/schemas/GenerateRequest"}


def _served_by_the_backend(document: dict[str, Any], stack: Stack) -> dict[str, Any]:
    """`document` less the relayed routes the stand-in backend does not serve (the worker
    relays its 404 unchanged, as text: not the worker's answer to check)."""
    relayed = {path for _, path in served_routes(stack.backend_server.app)}
    paths = document["paths"]
    kept = {path: item for path, item in paths.items() if path in relayed or "post" not in item}
    return {**document, "paths": kept}


async def test_schemathesis_with_made_up_tickets_finds_no_server_error(stack: Stack) -> None:
    assert await fuzz(await _document(stack), stack.worker_url, max_examples=5) == []
    stack.assert_idle()


async def test_schemathesis_with_valid_tickets_finds_no_server_error(stack: Stack) -> None:
    reqnums = itertools.count(10**15)

    def with_a_valid_ticket(case: Case[Any]) -> None:
        if isinstance(case.body, dict) and "auth_data" in case.body:
            ticket = stack.forge(cost=10**6, reqnum=next(reqnums), request_idx=next(reqnums))
            case.body = {**case.body, "auth_data": ticket}

    failures = await fuzz(
        _served_by_the_backend(await _document(stack), stack),
        stack.worker_url,
        prepare=with_a_valid_ticket,
        max_examples=5,
    )
    assert failures == []
    assert stack.backend.received, "no valid ticket got a request through to the backend"
    stack.assert_idle()
