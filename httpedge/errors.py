"""The error middleware of every aiohttp app of ours: whatever a handler raises becomes a JSON
answer, by the rules of `protocol.errors` (this module only adapts them to aiohttp).

- one of ours (a `ServiceError`): its status, `{"error", "error_type"}` body and headers
  (`Retry-After` when it has one);
- an HTTP error aiohttp raised on its own (404 no such route, 405 with `Allow`, 413 over the
  body limit): the same, through `protocol.errors.framework_error`; a redirect passes through;
- anything else: a 500 `internal` that says nothing of the exception; the log has the traceback.

Each error is logged once, with its request line, in the app's own logger: a 5xx as an error (as
a warning when it carries `Retry-After`: a state that passes, such as "not ready yet"); a 4xx is
the client's and is not logged. An error raised after the answer has started (its status and
headers are out) cannot be answered: it goes on to aiohttp, which logs it and closes the
connection. `on_error` sees every error answered (the PyWorker counts them by type); should it
fail, that is logged and the answer still goes out.

Not seen here: what aiohttp refuses before any handler runs (a request line or headers it
cannot parse, or beyond their size limits) is answered by `httpedge.connections` (431 or 400,
JSON too) on a server that `GuardedSite` serves, and the connection is closed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from protocol.errors import ServiceError, as_service_error, error_answer, framework_error

__all__ = ["ErrorHook", "error_middleware"]

ErrorHook = Callable[[web.Request, ServiceError], None]


def error_middleware(
    logger: logging.Logger, *, body_limit: int, on_error: ErrorHook | None = None
) -> Middleware:
    """The middleware for an app whose bodies are limited to `body_limit` bytes (aiohttp's
    `client_max_size`), logging to `logger`."""

    @web.middleware
    async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Exception as exc:
            redirect = isinstance(exc, web.HTTPException) and exc.status < 400
            if redirect or request.writer.output_size > 0:  # not an error, or too late to answer
                raise
            error = _as_service_error(exc, request, body_limit)
            _notify(on_error, request, error, logger)
            _log(logger, request, error, exc)
            status, headers, body = error_answer(error)
            return web.Response(status=status, headers=headers, body=body)

    return errors_as_json


def _notify(
    on_error: ErrorHook | None, request: web.Request, error: ServiceError, logger: logging.Logger
) -> None:
    if on_error is None:
        return
    try:
        on_error(request, error)
    except Exception:  # a counting hook must not cost the client its answer
        logger.exception("the error hook failed on %s %s", request.method, request.path)


def _as_service_error(exc: Exception, request: web.Request, body_limit: int) -> ServiceError:
    if isinstance(exc, web.HTTPException):
        return framework_error(
            exc.status,
            exc.reason,
            exc.headers,
            method=request.method,
            path=request.path,
            body_limit=body_limit,
        )
    return as_service_error(exc)


def _log(logger: logging.Logger, request: web.Request, error: ServiceError, exc: Exception) -> None:
    """A 5xx, once, with the request line; the traceback when the exception was unexpected."""
    if error.status < 500:
        return
    level = logging.WARNING if error.retry_after_s is not None else logging.ERROR
    unexpected = error is not exc and not isinstance(exc, web.HTTPException)
    logger.log(
        level,
        "%s %s answered %d %s: %s",
        request.method,
        request.path,
        error.status,
        error.error_type,
        error.message,
        exc_info=exc if unexpected else None,
    )
