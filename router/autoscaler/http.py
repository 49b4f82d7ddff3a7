"""The autoscaler on the router's HTTP API.

GET   /autoscaler          desired vs actual workers by phase, the cold pool, latest decisions
GET   /autoscaler/metrics  the same as Prometheus metrics
GET   /autoscaler/params   the endpoint parameters in force
PATCH /autoscaler/params   change some of them (endpoint API key); from the next tick

A PATCH is validated whole (the changes over the parameters in force): an out-of-range or
inconsistent value is a 422 that names the parameter and its valid range, and changes nothing.
Errors are raised as the router's exceptions, so its error middleware answers them as JSON.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from router.autoscaler.loop import AutoscalerLoop
from router.autoscaler.params import EndpointParams, ParamsError
from router.autoscaler.policy import Policy
from router.errors import BadRequest, InvalidRequest, Unauthorized

__all__ = ["add_autoscaler_routes"]

PolicyFactory = Callable[[EndpointParams], Policy]


def add_autoscaler_routes(
    app: web.Application, loop: AutoscalerLoop, make_policy: PolicyFactory, api_key: str
) -> None:
    async def status(request: web.Request) -> web.Response:
        return web.json_response(loop.status())

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=loop.metrics.exposition(), content_type="text/plain")

    async def params(request: web.Request) -> web.Response:
        return web.json_response(loop.params.model_dump())

    async def change_params(request: web.Request) -> web.Response:
        _check_key(request, api_key)
        changes = await _json_object(request)
        try:
            new = EndpointParams.parse({**loop.params.model_dump(), **changes})
        except ParamsError as exc:
            raise InvalidRequest(str(exc)) from None
        loop.reconfigure(make_policy(new))
        return web.json_response(new.model_dump())

    app.router.add_get("/autoscaler", status)
    app.router.add_get("/autoscaler/metrics", metrics)
    app.router.add_get("/autoscaler/params", params)
    app.router.add_patch("/autoscaler/params", change_params)


def _check_key(request: web.Request, api_key: str) -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    presented = token.strip().encode() if scheme.lower() == "bearer" else b""
    if not api_key or not hmac.compare_digest(presented, api_key.encode()):
        raise Unauthorized("missing or wrong API key: send `Authorization: Bearer <key>`")


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not JSON: send an object of parameters") from None
    if not isinstance(body, dict):
        raise InvalidRequest('the body must be a JSON object, e.g. {"max_workers": 8}')
    return body
