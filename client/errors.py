"""Every error the SDK raises, and the one function that turns an HTTP answer into one of them.

    TGISError                 base: `status`, `error_type`, `message`, `origin`, `retry_after`
    ├── ConnectionFailed      the router or worker could not be reached, or the connection broke
    ├── RequestTimeout        no complete answer within the client's timeout
    ├── NoCapacityError       the router had no ready worker before the capacity deadline
    ├── AuthenticationError   401/403 from the router: the API key is wrong or missing
    ├── EndpointNotFound      404 from the router: no endpoint with that name (not a 404
    │                         `not_found`: that URL is no router's route, a ProtocolError)
    ├── TicketRejected        401/403 from a worker: it refused the routing ticket
    ├── OverloadedError       429/503: try again later (`retry_after`, in seconds, when known)
    ├── ValidationError       400/413/422, or a request the SDK refuses before sending it
    ├── ServerError           any other 5xx: a fault of the router, worker or backend
    ├── ProtocolError         an answer that breaks the wire contract (unexpected status, bad body)
    └── StreamError           an error event inside a 200 token stream
        └── IncompleteStream  the stream ended before its final event

Third-party exceptions (aiohttp, pydantic) never escape the SDK: they are translated at the
boundary where they happen.

An answer maps by its status and by who sent it, and only then by its `error_type`
(`protocol.errors`; every type is in docs/errors.md), so that answers without our types map
the same: Vast's PyWorker answers 422 `{"error": "invalid JSON"}` or a bare 401/429, and
services from before the shared catalogue said `too_large` (413), `invalid_payload` (422) and
`http` (any 404 or 405 of the web server).
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

import pydantic

from protocol.errors import ErrorType

__all__ = [
    "AuthenticationError",
    "ConnectionFailed",
    "EndpointNotFound",
    "IncompleteStream",
    "NoCapacityError",
    "Origin",
    "OverloadedError",
    "ProtocolError",
    "RequestTimeout",
    "ServerError",
    "StreamError",
    "TGISError",
    "TicketRejected",
    "ValidationError",
    "error_from_response",
    "invalid_request",
    "parse_retry_after",
]

Origin = Literal["router", "worker", "client"]
"""Who produced the error: the router, the worker (or its backend), or the SDK itself."""

_MAX_MESSAGE_CHARS = 500
# A 404 for the URL itself, not for an endpoint: ours, and the one of services before it.
_NO_SUCH_PATH = frozenset({ErrorType.NOT_FOUND, "http"})


class TGISError(Exception):
    """Base of every SDK error. `status` is the HTTP status, or None when there was no answer;
    `retry_after` the seconds the answer said to wait before trying again (an OverloadedError's
    `Retry-After`), or None."""

    def __init__(
        self,
        message: str,
        *,
        origin: Origin,
        status: int | None = None,
        error_type: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.origin: Origin = origin
        self.status = status
        self.error_type = error_type
        self.retry_after = retry_after

    def __str__(self) -> str:
        failed = self.status is not None and self.status >= 300
        status = f" {self.status}" if failed else ""
        kind = f" ({self.error_type})" if self.error_type else ""
        return f"{self.origin}{status}{kind}: {self.message}"


class ConnectionFailed(TGISError):
    """The router or worker could not be reached, or the connection broke mid-answer."""


class RequestTimeout(TGISError):
    """No complete answer arrived within the client's timeout."""


class NoCapacityError(TGISError):
    """The router kept answering "no worker ready yet" until the capacity deadline passed."""


class AuthenticationError(TGISError):
    """The router refused the API key (401/403)."""


class EndpointNotFound(TGISError):
    """The router has no endpoint with the requested name (404)."""


class TicketRejected(TGISError):
    """The worker refused the routing ticket: 401 for its signature, key or expiry, 403 for its
    url, a replay, or a cost below the request's workload. `reason` is the check that failed,
    as the worker named it (`replayed`, `expired`, ...), when it did."""

    reason: str | None = None


class OverloadedError(TGISError):
    """The router or worker is at capacity (429/503); `retry_after` says when to come back."""


class ValidationError(TGISError):
    """The request itself is wrong (400/413/422), or the SDK refused to send it."""


class ServerError(TGISError):
    """A 5xx: a fault of the router, the worker or its backend, not of the request."""


class ProtocolError(TGISError):
    """An answer that does not follow the wire contract (unexpected status, malformed body)."""


class StreamError(TGISError):
    """The worker reported an error inside a 200 token stream."""


class IncompleteStream(StreamError):
    """The token stream ended before the event that carries `generated_text`."""


def error_from_response(
    status: int,
    body: bytes | str,
    *,
    origin: Literal["router", "worker"],
    retry_after: str | None = None,
) -> TGISError:
    """The exception for a non-200 answer. Any body is accepted: JSON `{"error", "error_type"}`
    gives the message and type, anything else becomes a truncated message."""
    message, error_type = _describe_body(body, status)
    kind = _error_class(status, origin, error_type)
    if kind is ProtocolError:
        message = f"unexpected HTTP status {status}: {message}"
    seconds = parse_retry_after(retry_after) if kind is OverloadedError else None
    error = kind(message, origin=origin, status=status, error_type=error_type, retry_after=seconds)
    if isinstance(error, TicketRejected):
        error.reason = _reason_of(body)
    return error


def _error_class(
    status: int, origin: Literal["router", "worker"], error_type: str | None
) -> type[TGISError]:
    if status in (429, 503):
        return OverloadedError
    if status >= 500:
        return ServerError
    if status in (400, 413, 422):
        return ValidationError
    if status in (401, 403):
        return AuthenticationError if origin == "router" else TicketRejected
    if status == 404 and origin == "router" and error_type not in _NO_SUCH_PATH:
        return EndpointNotFound
    return ProtocolError


def invalid_request(what: str, exc: pydantic.ValidationError) -> ValidationError:
    """A request the SDK refuses to send, naming each field that is wrong and why."""
    problems = [
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    ]
    return ValidationError(f"invalid {what}: {'; '.join(problems)}", origin="client")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header in its delta-seconds form; None when absent or not a
    finite non-negative number (HTTP dates are not used by our services)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _describe_body(body: bytes | str, status: int) -> tuple[str, str | None]:
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        parsed: Any = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
        parsed = None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        error_type = parsed.get("error_type")
        if isinstance(error, str) and error:
            return _truncate(error), error_type if isinstance(error_type, str) else None
    text = " ".join(text.split())
    return (_truncate(text) if text else f"HTTP {status} with an empty body"), None


def _reason_of(body: bytes | str) -> str | None:
    """A ticket rejection's `reason` (the check that failed), when the body is JSON that has one."""
    try:
        parsed: Any = json.loads(body)
    except (ValueError, RecursionError):
        return None
    reason = parsed.get("reason") if isinstance(parsed, dict) else None
    return reason if isinstance(reason, str) else None


def _truncate(text: str) -> str:
    if len(text) <= _MAX_MESSAGE_CHARS:
        return text
    return text[: _MAX_MESSAGE_CHARS - 1] + "…"
