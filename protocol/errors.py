"""The error contract of every service of ours: one body, one base exception, one catalogue.

Every error answer, from the router, its gateway, the PyWorker and the backend alike, is JSON
with `Content-Type: application/json`:

    {"error": "<what went wrong, and what to change>", "error_type": "<a name in ErrorType>"}

in that key order, written compactly with raw UTF-8 as TGI writes it (the backend's answers stay
byte-compatible with TGI's). A PyWorker's ticket rejection adds `"reason"`, the check that
failed. A 4xx is the client's to fix; a 5xx is a fault of ours or of a backend. `Retry-After`
(whole seconds, at least 1) goes with an error that knows when to come back; `Allow` with a 405.

`ErrorType` names every `error_type` a client can meet and `ERROR_TYPES` gives each its HTTP
statuses; docs/errors.md is the same catalogue in prose, for people (a test keeps the two
equal). The same case has the same type everywhere: TGI's words where TGI has one
(`validation`, `overloaded`, `payload_too_large`), and TGI's own types and messages untouched.

`ServiceError` is the base of each package's exceptions (`RouterError`, `WorkerError`,
`BackendError`): a subclass names its `error_type`, and its status follows from the catalogue.
`framework_error` turns an error the web server raised on its own (no such route, wrong method,
body over the limit) into one of ours, `as_service_error` any other exception (what is not one
of ours is a 500 `internal` whose message says nothing of it: the service's log has the
traceback), and `error_answer` an error into the status, headers and body bytes to send.
Everything here is pure, with no web framework: the aiohttp adapter over it is
`httpedge.errors`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

__all__ = [
    "ERROR_TYPES",
    "INTERNAL_MESSAGE",
    "ErrorAnswer",
    "ErrorBody",
    "ErrorKind",
    "ErrorType",
    "ServiceError",
    "as_service_error",
    "encode_error_body",
    "error_answer",
    "framework_error",
]


class ErrorType(StrEnum):
    """Every `error_type` our services send, and those of TGI that a PyWorker relays."""

    # Ours (router, gateway, PyWorker, backend).
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    TICKET_REJECTED = "ticket_rejected"
    NOT_FOUND = "not_found"
    ENDPOINT_NOT_FOUND = "endpoint_not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    REQUEST_TIMEOUT = "request_timeout"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    HEADERS_TOO_LARGE = "headers_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    VALIDATION = "validation"
    OVERLOADED = "overloaded"
    INTERNAL = "internal"
    WORKER_FAILED = "worker_failed"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    UNAVAILABLE = "unavailable"
    NO_WORKER = "no_worker"
    NOT_READY = "not_ready"
    BACKEND_TIMEOUT = "backend_timeout"
    # TGI's, spelled as TGI spells them (two of them with spaces).
    GENERATION = "generation"
    TEMPLATE_ERROR = "template_error"
    MISSING_TEMPLATE_VARIABLE = "missing_template_variable"
    TOOL_ERROR = "tool_error"
    SUFFIX_NOT_SUPPORTED = "suffix not supported"
    BATCH_SIZE_EXCEEDED = "batch size exceeded"
    INCOMPLETE_GENERATION = "incomplete_generation"
    INCOMPLETE_GENERATION_STREAM = "incomplete_generation_stream"
    STREAM_SERIALIZATION_ERROR = "stream_serialization_error"
    HEADERS = "headers"
    NO_DETAILS = "no details"
    HEALTHCHECK = "healthcheck"


@dataclass(frozen=True)
class ErrorKind:
    """Where an error type appears: the HTTP statuses it answers with (the usual one first;
    none for an event that only ever ends a stream), and whether it may also be the error event
    that ends a 200 token stream."""

    statuses: tuple[int, ...]
    in_stream: bool = False

    @property
    def status(self) -> int:
        """The status an error of this type answers with (500 if it is only ever an event)."""
        return self.statuses[0] if self.statuses else 500


_T = ErrorType
ERROR_TYPES: Mapping[ErrorType, ErrorKind] = {
    _T.BAD_REQUEST: ErrorKind((400,)),
    _T.UNAUTHORIZED: ErrorKind((401,)),
    _T.FORBIDDEN: ErrorKind((403,)),
    _T.TICKET_REJECTED: ErrorKind((401, 403)),
    _T.NOT_FOUND: ErrorKind((404,)),
    _T.ENDPOINT_NOT_FOUND: ErrorKind((404,)),
    _T.METHOD_NOT_ALLOWED: ErrorKind((405,)),
    _T.CONFLICT: ErrorKind((409,)),
    _T.REQUEST_TIMEOUT: ErrorKind((408,)),
    _T.PAYLOAD_TOO_LARGE: ErrorKind((413,)),
    _T.HEADERS_TOO_LARGE: ErrorKind((431,)),
    _T.UNSUPPORTED_MEDIA_TYPE: ErrorKind((415,)),
    _T.VALIDATION: ErrorKind((422,)),
    _T.OVERLOADED: ErrorKind((429,)),
    _T.INTERNAL: ErrorKind((500,)),
    _T.WORKER_FAILED: ErrorKind((502,)),
    _T.BACKEND_UNAVAILABLE: ErrorKind((502,)),
    _T.UNAVAILABLE: ErrorKind((503,)),
    _T.NO_WORKER: ErrorKind((503,)),
    _T.NOT_READY: ErrorKind((503,)),
    _T.BACKEND_TIMEOUT: ErrorKind((504,)),
    _T.GENERATION: ErrorKind((424,), in_stream=True),
    _T.TEMPLATE_ERROR: ErrorKind((422,)),
    _T.MISSING_TEMPLATE_VARIABLE: ErrorKind((422,)),
    _T.TOOL_ERROR: ErrorKind((422,)),
    _T.SUFFIX_NOT_SUPPORTED: ErrorKind((422,)),
    _T.BATCH_SIZE_EXCEEDED: ErrorKind((422,)),
    _T.INCOMPLETE_GENERATION: ErrorKind((500,)),
    _T.INCOMPLETE_GENERATION_STREAM: ErrorKind((), in_stream=True),
    _T.STREAM_SERIALIZATION_ERROR: ErrorKind((500,)),
    _T.HEADERS: ErrorKind((500,)),
    _T.NO_DETAILS: ErrorKind((500,)),
    _T.HEALTHCHECK: ErrorKind((503,)),
}

# The type of an error the web server raises on its own, by status.
_FRAMEWORK_TYPES = {
    400: _T.BAD_REQUEST,
    401: _T.UNAUTHORIZED,
    403: _T.FORBIDDEN,
    404: _T.NOT_FOUND,
    405: _T.METHOD_NOT_ALLOWED,
    409: _T.CONFLICT,
    413: _T.PAYLOAD_TOO_LARGE,
    415: _T.UNSUPPORTED_MEDIA_TYPE,
    422: _T.VALIDATION,
    429: _T.OVERLOADED,
}

INTERNAL_MESSAGE = "Internal server error"
"""The whole message of a 500 for an unexpected exception: nothing of the exception leaks."""


class ErrorBody(BaseModel):
    """The JSON body of every error answer (and of TGI's error event in a stream). `reason` is
    the PyWorker's, on a `ticket_rejected` only: the ticket check that failed."""

    model_config = ConfigDict(extra="ignore", strict=True)

    error: str
    error_type: str
    reason: str | None = None


class ServiceError(Exception):
    """An error a service answers with: `status` (from the catalogue, by `error_type`),
    `error_type`, `message`, and `retry_after_s` when the client may come back after that."""

    error_type: ErrorType = ErrorType.INTERNAL

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s

    @property
    def status(self) -> int:
        return ERROR_TYPES[self.error_type].status

    def body(self) -> ErrorBody:
        return ErrorBody(error=self.message, error_type=str(self.error_type))

    def headers(self) -> dict[str, str]:
        """`Retry-After` in whole seconds, rounded up and at least 1, when the error has one."""
        if self.retry_after_s is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}


class _FrameworkError(ServiceError):
    """An HTTP error the web server raised on its own, as one of ours."""

    def __init__(self, status: int, error_type: ErrorType, message: str, allow: str | None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self._status = status
        self._allow = allow

    @property
    def status(self) -> int:
        return self._status

    def headers(self) -> dict[str, str]:
        return {"Allow": self._allow} if self._allow is not None else {}


def framework_error(
    status: int,
    reason: str,
    headers: Mapping[str, str],
    *,
    method: str,
    path: str,
    body_limit: int,
) -> ServiceError:
    """One of ours for an HTTP error (4xx or 5xx) the web server raised itself, for `method`
    `path`: 404 `not_found`, 405 `method_not_allowed` keeping `Allow`, 413 `payload_too_large`
    naming `body_limit`; any other status keeps its `reason`, with the catalogue's type for the
    status, else `bad_request` (4xx) or `internal` (5xx)."""
    allow = headers.get("Allow") if status == 405 else None
    if status == 404:
        message = f"nothing answers at {path}: check the URL"
    elif status == 405:
        message = f"{path} does not take {method}: use {(allow or '').replace(',', ', ')}"
    elif status == 413:
        message = f"request body is over the {body_limit}-byte limit"
    else:
        message = reason
    fallback = _T.BAD_REQUEST if status < 500 else _T.INTERNAL
    return _FrameworkError(status, _FRAMEWORK_TYPES.get(status, fallback), message, allow)


class ErrorAnswer(NamedTuple):
    """What to send: status, headers (Content-Type included) and body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


def as_service_error(error: BaseException) -> ServiceError:
    """`error` if it is one of ours; anything else is a 500 `internal` with `INTERNAL_MESSAGE`
    only, so that nothing of an unexpected exception reaches a client."""
    return error if isinstance(error, ServiceError) else ServiceError(INTERNAL_MESSAGE)


def error_answer(error: BaseException) -> ErrorAnswer:
    """The answer for `error` (see `as_service_error`)."""
    error = as_service_error(error)
    headers = {"Content-Type": "application/json", **error.headers()}
    return ErrorAnswer(error.status, headers, encode_error_body(error.body()))


def encode_error_body(body: ErrorBody) -> bytes:
    """`body` as TGI writes JSON (compact, raw UTF-8); text that has no UTF-8 form (a lone
    surrogate a client sent, quoted back) is written as `\\u` escapes instead."""
    document = body.model_dump(exclude_none=True)
    try:
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(document, separators=(",", ":")).encode("ascii")
