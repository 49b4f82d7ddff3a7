"""The rest of TGI's API at the PyWorker: `/invocations` and the tokenizing routes with a ticket
priced by `protocol.workload`, the metadata routes with none (`protocol.relay`'s route table)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.fake_tgi import FAKE_INFO
from tests.integration.pyworker.stack import Stack

CHAT = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}


@pytest.mark.parametrize(
    ("path", "payload", "workload"),
    [
        ("/invocations", {"inputs": "x", "parameters": {"max_new_tokens": 4}}, 4),
        ("/invocations", CHAT, 5),
        ("/invocations", {"prompt": ["a", "b"], "max_tokens": 3}, 6),
        ("/tokenize", {"inputs": "x" * 5000, "parameters": {"max_new_tokens": 900}}, 1),
        ("/chat_tokenize", {**CHAT, "max_tokens": 900}, 1),
    ],
)
async def test_a_route_is_relayed_with_a_ticket_that_pays_its_workload(
    stack: Stack, path: str, payload: dict[str, Any], workload: int
) -> None:
    too_low = await stack.post(
        path, {"auth_data": stack.forge(cost=workload - 1), "payload": payload}
    )
    assert too_low.status == 403
    assert (await too_low.json())["reason"] == "cost_too_low"
    response = await stack.post(path, {"auth_data": stack.forge(cost=workload), "payload": payload})
    assert response.status == 200
    assert await response.json() == {"route": path, "payload": payload}
    assert stack.backend.received == [(path, payload)]
    stack.assert_idle()


@pytest.mark.parametrize("path", ["/invocations", "/tokenize", "/chat_tokenize"])
async def test_a_route_that_reaches_the_backend_needs_a_ticket(stack: Stack, path: str) -> None:
    response = await stack.post(path, {"payload": {"inputs": "x"}})
    assert response.status == 401
    assert (await response.json())["error_type"] == "ticket_rejected"
    assert stack.backend.received == []


async def test_info_and_models_are_the_backends_with_no_ticket(stack: Stack) -> None:
    async with stack.http.get(f"{stack.worker_url}/info") as response:
        assert response.status == 200
        assert await response.json() == FAKE_INFO
    async with stack.http.get(f"{stack.worker_url}/v1/models") as response:
        assert response.status == 200
        assert (await response.json())["data"][0]["id"] == FAKE_INFO["model_id"]
    stack.assert_idle()


async def test_health_is_the_workers_own(stack: Stack) -> None:
    async with stack.http.get(f"{stack.worker_url}/health") as response:
        assert response.status == 200
        assert (await response.json())["state"] == "ready"
