"""The error contract as each app's `test_error_contract.py` checks it.

Every app (the router, its gateway, the PyWorker, the backend) gets one parametrised test with a
real request for each status in `STATUSES`; a status the app cannot answer at all is listed with
the reason why, and its case is skipped with that reason. Every answer must have the one shape
of `protocol.errors` (docs/errors.md): the status, `Content-Type: application/json`, a body of
exactly `{"error", "error_type"}` (plus `reason` for `ticket_rejected`) whose type is in the
catalogue for that status, and `Retry-After` and `Allow` exactly where they apply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import pytest

from protocol.errors import ERROR_TYPES, ErrorType

__all__ = ["STATUSES", "Call", "Expected", "check_answer", "contract_cases"]

STATUSES = (400, 401, 403, 404, 405, 413, 422, 429)

RequestT = TypeVar("RequestT")


@dataclass(frozen=True)
class Call:
    """A request to an app: `body` is sent as it is."""

    method: str
    path: str
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Expected:
    """The answer a case must get: `retry_after` whether `Retry-After` comes with it; `allow`,
    a method that `Allow` must list (None: no `Allow`); `reason`, a ticket rejection's."""

    status: int
    error_type: ErrorType
    retry_after: bool = False
    allow: str | None = None
    reason: str | None = None


def contract_cases(
    cases: Sequence[tuple[RequestT, Expected]], cannot_occur: Mapping[int, str] | None = None
) -> list[Any]:
    """The parameters `(request, expected)` of an app's contract test: its `cases`, and one
    skipped case per status in `cannot_occur`, with the reason it cannot. Together they must
    cover `STATUSES` (checked as the test module is collected)."""
    cannot_occur = cannot_occur or {}
    answered = {expected.status for _, expected in cases}
    missing = set(STATUSES) - answered - set(cannot_occur)
    assert not missing, f"no case for {sorted(missing)}"
    assert not answered & set(cannot_occur), "a status is both answered and said impossible"
    params = [
        pytest.param(request, expected, id=f"{expected.status}-{expected.error_type}")
        for request, expected in cases
    ]
    params += [
        pytest.param(None, None, id=f"{status}-cannot-occur", marks=pytest.mark.skip(reason=why))
        for status, why in sorted(cannot_occur.items())
    ]
    return params


async def check_answer(response: aiohttp.ClientResponse, expected: Expected) -> dict[str, str]:
    """Assert that `response` is the error answer `expected` describes; its body."""
    assert response.status == expected.status, await response.text()
    assert response.content_type == "application/json"
    assert expected.status in ERROR_TYPES[expected.error_type].statuses
    body: dict[str, str] = await response.json()
    keys = ["error", "error_type"]
    if expected.error_type is ErrorType.TICKET_REJECTED:
        keys.append("reason")
        assert body.get("reason") == expected.reason
    assert list(body) == keys
    assert body["error_type"] == expected.error_type
    assert all(isinstance(value, str) and value for value in body.values())
    if expected.retry_after:
        assert int(response.headers["Retry-After"]) >= 1
    else:
        assert "Retry-After" not in response.headers
    if expected.allow is not None:
        assert expected.allow in response.headers["Allow"].split(",")
    else:
        assert "Allow" not in response.headers
    return body
