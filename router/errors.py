"""The router's exceptions (its gateway's included), each an `error_type` of `protocol.errors`,
which gives its HTTP status; the error middleware (`httpedge.errors`) answers them as JSON.

RouterError             500  internal
├── BadRequest          400  bad_request          the body is not JSON
├── Unauthorized        401  unauthorized         wrong or missing API key / admin key / token
├── Forbidden           403  forbidden            a worker this router did not start
├── EndpointNotFound    404  endpoint_not_found   no endpoint of that name (or id)
├── NotFound            404  not_found            no such resource (worker group, CA certificate)
├── Conflict            409  conflict             a resource of that name exists already
├── PayloadTooLarge     413  payload_too_large    the body is over the size limit
├── InvalidRequest      422  validation           a field is out of range
├── Overloaded          429  overloaded           too many requests wait for a worker already
├── WorkerFailed        502  worker_failed        every worker tried failed before answering
├── NoWorker            503  no_worker            no ready worker came in time (gateway)
└── Unavailable         503  unavailable          the endpoint is suspended or stopped; /route/
    │                                             with no worker ready (`retry`)
    └── StateUnwritable                           a state file could not be written (full disk)

`retry_after_s` (any of them) becomes `Retry-After`.
"""

from __future__ import annotations

from protocol.errors import ErrorType, ServiceError

__all__ = [
    "BadRequest",
    "Conflict",
    "EndpointNotFound",
    "Forbidden",
    "InvalidRequest",
    "NoWorker",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "RouterError",
    "StateUnwritable",
    "Unauthorized",
    "Unavailable",
    "WorkerFailed",
]


class RouterError(ServiceError):
    """Base of the router's errors."""


class BadRequest(RouterError):
    error_type = ErrorType.BAD_REQUEST


class Unauthorized(RouterError):
    error_type = ErrorType.UNAUTHORIZED


class Forbidden(RouterError):
    error_type = ErrorType.FORBIDDEN


class EndpointNotFound(RouterError):
    error_type = ErrorType.ENDPOINT_NOT_FOUND


class NotFound(RouterError):
    error_type = ErrorType.NOT_FOUND


class Conflict(RouterError):
    error_type = ErrorType.CONFLICT


class PayloadTooLarge(RouterError):
    error_type = ErrorType.PAYLOAD_TOO_LARGE


class InvalidRequest(RouterError):
    error_type = ErrorType.VALIDATION


class Overloaded(RouterError):
    error_type = ErrorType.OVERLOADED


class WorkerFailed(RouterError):
    error_type = ErrorType.WORKER_FAILED


class NoWorker(RouterError):
    error_type = ErrorType.NO_WORKER


class Unavailable(RouterError):
    error_type = ErrorType.UNAVAILABLE


class StateUnwritable(Unavailable, OSError):
    """A file in the state directory could not be written (the disk is full or read-only): the
    stored version is untouched. An OSError too, so that what handles a failed write (start-up,
    the reqnum writer) still does; a request that waited on the write is answered 503
    `unavailable` with `Retry-After`."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after_s=STATE_RETRY_AFTER_S)


STATE_RETRY_AFTER_S = 5.0
