"""The router's exceptions, each with the HTTP status and `error_type` it becomes at the edge.

RouterError
├── BadRequest          400  the body is not JSON
├── Unauthorized        401  wrong or missing API key / admin key / worker token
├── Forbidden           403  a worker this router did not start
├── EndpointNotFound    404  no such endpoint
├── NotFound            404  no such resource (worker group, ...)
├── Conflict            409  a resource of that name exists already
├── PayloadTooLarge     413  the body is over the size limit
├── InvalidRequest      422  a field is out of range
├── Overloaded          429  too many clients already waiting for a worker
├── WorkerFailed        502  every worker tried failed before answering (gateway)
├── NoWorker            503  no ready worker came in time (gateway)
└── Unavailable         503  the endpoint is suspended or stopped; /route/ with no worker (`retry`)
"""

from __future__ import annotations

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
    "Unauthorized",
    "Unavailable",
    "WorkerFailed",
]


class RouterError(Exception):
    status = 500
    error_type = "internal"

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class BadRequest(RouterError):
    status = 400
    error_type = "bad_request"


class Unauthorized(RouterError):
    status = 401
    error_type = "unauthorized"


class EndpointNotFound(RouterError):
    status = 404
    error_type = "endpoint_not_found"


class InvalidRequest(RouterError):
    status = 422
    error_type = "validation"


class Overloaded(RouterError):
    status = 429
    error_type = "overloaded"


class Forbidden(RouterError):
    status = 403
    error_type = "forbidden"


class NotFound(RouterError):
    status = 404
    error_type = "not_found"


class Conflict(RouterError):
    status = 409
    error_type = "conflict"


class Unavailable(RouterError):
    status = 503
    error_type = "unavailable"


class PayloadTooLarge(RouterError):
    status = 413
    error_type = "too_large"


class WorkerFailed(RouterError):
    status = 502
    error_type = "worker_failed"


class NoWorker(RouterError):
    status = 503
    error_type = "no_worker"
