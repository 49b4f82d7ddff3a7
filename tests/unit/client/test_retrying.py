"""Which errors the SDK tries again, with a fresh ticket, before the first byte."""

from __future__ import annotations

import json

import pytest

from client.errors import (
    ConnectionFailed,
    OverloadedError,
    TGISError,
    TicketRejected,
    ValidationError,
    error_from_response,
)
from client.retrying import RetryPolicy


def rejected(reason: str, status: int = 403) -> TicketRejected:
    """What the SDK makes of a worker's refusal, from its JSON body."""
    body = {"error": "route again", "error_type": "ticket_rejected", "reason": reason}
    error = error_from_response(status, json.dumps(body), origin="worker")
    assert isinstance(error, TicketRejected)
    assert error.reason == reason
    return error


@pytest.mark.parametrize(
    "error",
    [
        OverloadedError("busy", origin="worker", status=429),
        ConnectionFailed("refused", origin="router"),
        rejected("replayed"),  # a fresh ticket below the worker's window: the router moved on
    ],
)
def test_failures_before_any_work_are_tried_again(error: TGISError) -> None:
    policy = RetryPolicy()
    assert [policy.should_retry(error, attempt) for attempt in range(1, 6)] == [True] * 4 + [False]


@pytest.mark.parametrize(
    "error",
    [
        rejected("expired", status=401),
        rejected("wrong_url"),
        ValidationError("bad", origin="worker", status=422),
    ],
)
def test_a_ticket_or_request_that_is_wrong_is_not_tried_again(error: TGISError) -> None:
    assert not RetryPolicy().should_retry(error, 1)
