"""The backend's error contract: a real request for each status of `tests.error_contract`, and
the one JSON answer of docs/errors.md for each, in TGI's words (TGI's own cases, wording and
bytes are pinned in `test_errors`)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from protocol import ErrorType
from tests.error_contract import Call, Expected, check_answer, contract_cases
from tests.integration.tgi_server.conftest import MakeClient

JSON = {"Content-Type": "application/json"}
BODY_LIMIT = 1024


@dataclass(frozen=True)
class BackendCall:
    """A request to a backend with `settings`; `busy`: every request slot is taken meanwhile."""

    call: Call
    settings: dict[str, Any] = field(default_factory=dict)
    busy: bool = False


def generate(body: object) -> Call:
    return Call("POST", "/generate", json.dumps(body).encode(), JSON)


NO_AUTHENTICATION = (
    "the backend has no authentication, as TGI has none: it listens on localhost, and only its "
    "PyWorker, which checks tickets, reaches it"
)

CASES = contract_cases(
    [
        (
            BackendCall(Call("POST", "/generate", b'{"inputs": ', JSON)),
            Expected(400, ErrorType.BAD_REQUEST),
        ),
        (BackendCall(Call("GET", "/nowhere")), Expected(404, ErrorType.NOT_FOUND)),
        (
            BackendCall(Call("GET", "/generate")),
            Expected(405, ErrorType.METHOD_NOT_ALLOWED, allow="POST"),
        ),
        (
            BackendCall(generate({"inputs": "a" * BODY_LIMIT}), {"payload_limit": BODY_LIMIT}),
            Expected(413, ErrorType.PAYLOAD_TOO_LARGE),
        ),
        (
            BackendCall(generate({"inputs": "a", "parameters": {"top_p": 1.0}})),
            Expected(422, ErrorType.VALIDATION),
        ),
        (  # no free request slot; TGI says nothing of when to retry, and neither do we
            BackendCall(generate({"inputs": "a"}), {"max_concurrent_requests": 1}, busy=True),
            Expected(429, ErrorType.OVERLOADED),
        ),
    ],
    cannot_occur={401: NO_AUTHENTICATION, 403: NO_AUTHENTICATION},
)


@pytest.mark.parametrize(("case", "expected"), CASES)
async def test_each_error_is_the_one_json_answer(
    make_client: MakeClient, case: BackendCall, expected: Expected
) -> None:
    client, call = await make_client(**case.settings), case.call
    async with contextlib.AsyncExitStack() as holding:
        if case.busy:  # a stream holds the only request slot until it is closed
            body = {"inputs": "a", "parameters": {"max_new_tokens": 1000}}
            holder = await holding.enter_async_context(client.post("/generate_stream", json=body))
            await holder.content.readuntil(b"\n\n")
        answer = await client.request(call.method, call.path, data=call.body, headers=call.headers)
        await check_answer(answer, expected)
