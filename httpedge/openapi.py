"""`GET /openapi.json`: a service's OpenAPI document (`protocol.openapi`), served as built."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from protocol.openapi import OPENAPI_PATH

__all__ = ["add_openapi_route"]


def add_openapi_route(app: web.Application, document: dict[str, Any]) -> None:
    """Serve `document` at `GET /openapi.json`, open to every client (it holds no secret)."""

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get(OPENAPI_PATH, openapi)
