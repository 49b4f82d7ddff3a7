"""The PyWorker's exceptions, each an `error_type` of `protocol.errors`, which gives its HTTP
status; the error middleware (`httpedge.errors`) answers them as JSON.

WorkerError               500  internal
├── BadRequest            400  bad_request          the body is not JSON
├── PayloadTooLarge       413  payload_too_large    the body is over the size limit
├── InvalidPayload        422  validation           the envelope or payload is malformed
├── TicketRejected        401 / 403  ticket_rejected  no valid routing ticket (`reason`)
├── Overloaded            429  overloaded           the expected wait is over max_queue_time
├── NotReady              503  not_ready            the backend is not serving yet, or draining
├── BackendUnavailable    502  backend_unavailable  the backend could not be reached
└── BackendTimeout        504  backend_timeout      the backend sent no first byte in time

A ticket rejection keeps its own type, apart from the router's `unauthorized` and `forbidden`:
the client's fix is another ticket from /route/ (or the keys and clocks of router and worker),
not another API key; its body adds `reason`, the check that failed. Overloaded and NotReady say
when to come back (`Retry-After`). A body that does not arrive in time is
`httpedge.connections.BodyTimeout` (408), the same for every service.
"""

from __future__ import annotations

from protocol.errors import ErrorBody, ErrorType, ServiceError

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


class WorkerError(ServiceError):
    """Base of the PyWorker's errors."""


class BadRequest(WorkerError):
    error_type = ErrorType.BAD_REQUEST


class PayloadTooLarge(WorkerError):
    error_type = ErrorType.PAYLOAD_TOO_LARGE


class InvalidPayload(WorkerError):
    error_type = ErrorType.VALIDATION


class TicketRejected(WorkerError):
    """A ticket failed a check. `reason` names the check; `status` is 401 or 403."""

    error_type = ErrorType.TICKET_REJECTED

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self._status = status
        self.reason = reason

    @property
    def status(self) -> int:
        return self._status

    def body(self) -> ErrorBody:
        return super().body().model_copy(update={"reason": self.reason})


class Overloaded(WorkerError):
    error_type = ErrorType.OVERLOADED

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, retry_after_s=retry_after_s)


class NotReady(WorkerError):
    """Not serving now: come back in a second (or route again)."""

    error_type = ErrorType.NOT_READY

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after_s=1)


class BackendUnavailable(WorkerError):
    error_type = ErrorType.BACKEND_UNAVAILABLE


class BackendTimeout(WorkerError):
    error_type = ErrorType.BACKEND_TIMEOUT
