"""The router's error middleware: every error a handler raises becomes a JSON answer.

A `RouterError` (`router.errors`) answers its status, `{"error", "error_type"}`, and
`Retry-After` when it has one; a body over `max_body_bytes` answers 413 `too_large`; any other
aiohttp HTTP error (404, 405, ...) answers its status with `error_type: "http"`, keeping the
headers that still apply (e.g. `Allow`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from router.errors import RouterError
from router.http.state import SETTINGS

__all__ = ["error_middleware"]


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except RouterError as exc:
        return _error_response(exc)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].max_body_bytes
        body = {"error": f"request body is over the {limit}-byte limit", "error_type": "too_large"}
        return web.json_response(body, status=413)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response(
            {"error": exc.reason, "error_type": "http"},
            status=exc.status,
            headers=_extra_headers(exc),
        )


def _error_response(exc: RouterError) -> web.Response:
    headers = {}
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    body = {"error": exc.message, "error_type": exc.error_type}
    return web.json_response(body, status=exc.status, headers=headers)


def _extra_headers(exc: web.HTTPException) -> dict[str, str]:
    """An HTTP exception's headers that still apply to a JSON body (e.g. `Allow` on a 405)."""
    return {
        k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")
    }
