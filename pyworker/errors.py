"""The PyWorker's exceptions. Each carries the HTTP status and `error_type` it becomes at the edge.

WorkerError
├── BadRequest            400  the body is not JSON
├── PayloadTooLarge       413  the body is over the size limit
├── InvalidPayload        422  the envelope or payload is malformed
├── TicketRejected        401 / 403  no valid routing ticket (see `reason`)
├── Overloaded            429  the expected wait is over max_queue_time (Retry-After)
├── NotReady              503  the backend is not serving yet, or the worker is draining
├── BackendUnavailable    502  the backend could not be reached
└── BackendTimeout        504  the backend sent no first byte in time
"""

from __future__ import annotations

__all__ = [
    "BackendTimeout",
    "BackendUnavailable",
    "BadRequest",
    "InvalidPayload",
    "NotReady",
    "Overloaded",
    "PayloadTooLarge",
    "TicketRejected",
    "WorkerError",
]


class WorkerError(Exception):
    status = 500
    error_type = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(WorkerError):
    status = 400
    error_type = "bad_request"


class PayloadTooLarge(WorkerError):
    status = 413
    error_type = "payload_too_large"


class InvalidPayload(WorkerError):
    status = 422
    error_type = "invalid_payload"


class TicketRejected(WorkerError):
    """A ticket failed a check. `reason` names the check; `status` is 401 or 403."""

    error_type = "ticket_rejected"

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class Overloaded(WorkerError):
    status = 429
    error_type = "overloaded"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotReady(WorkerError):
    status = 503
    error_type = "not_ready"


class BackendUnavailable(WorkerError):
    status = 502
    error_type = "backend_unavailable"


class BackendTimeout(WorkerError):
    status = 504
    error_type = "backend_timeout"
