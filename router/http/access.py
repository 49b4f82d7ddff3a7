"""Who may call the operator's routes: the admin key, or anyone for read-only status.

`admin_only` guards what changes the fleet or shows it whole: the management API, the
autoscaler's parameters, and (unless `public_status` is set) `/status`, `/ui` and
`GET /autoscaler*`, which name every worker and its URL. `status_reader` is that "unless":
the read-only routes a router on a private network may open with `--public-status`.

The admin key is presented as `Authorization: Bearer <key>`, or as the password of HTTP Basic
authentication (any user name), which a browser asks for: every refusal carries a Basic
challenge, so opening `/ui` in a browser prompts for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from router.credentials import admin_credential, same_secret
from router.errors import Unauthorized
from router.http.state import SETTINGS

__all__ = ["AdminKeyRequired", "Handler", "admin_only", "status_reader"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AdminKeyRequired(Unauthorized):
    """401 with a Basic challenge, so that a browser asks for the admin key."""

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "WWW-Authenticate": 'Basic realm="tgi-serverless router"'}


def admin_only(handler: Handler) -> Handler:
    """`handler`, answered only to a request that presents the router's admin key."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        _check_admin_key(request)
        return await handler(request)

    return guarded


def status_reader(handler: Handler) -> Handler:
    """`handler`, a read-only status route: the admin key is needed unless the router was
    started with `public_status`."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if not request.app[SETTINGS].public_status:
            _check_admin_key(request)
        return await handler(request)

    return guarded


def _check_admin_key(request: web.Request) -> None:
    expected = request.app[SETTINGS].admin_key.get_secret_value()
    if not expected:
        raise AdminKeyRequired("this route is off: start the router with an admin key")
    if not same_secret(admin_credential(request) or "", expected):
        raise AdminKeyRequired(
            "missing or wrong admin key: send `Authorization: Bearer <admin key>`"
        )
