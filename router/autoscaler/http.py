"""The autoscaler on the router's HTTP API.

GET   /autoscaler          desired vs actual workers by phase, the cold pool, latest decisions
GET   /autoscaler/metrics  the same as Prometheus metrics (also served on the router's /metrics)
GET   /autoscaler/params   the scaled endpoint's parameters (as the endpoint resource holds them)
PATCH /autoscaler/params   change some of them; from the next tick

Every route wants the router's admin key (`router.http.access`); the three GETs are open to
anyone when the router runs with `public_status`. An endpoint's API key is a client's: it
may not scale the fleet.

The parameters live on the endpoint resource (`router.endpoints.store`): a PATCH here writes
them there, exactly as `PATCH /api/v0/endpoints/{name}` does, and the loop follows the store
(`router.autoscaler.endpoint_seam`), so both views always agree. A PATCH is validated whole
(the changes over the parameters in force, by `EndpointParams.parse`): an out-of-range or
inconsistent value is a 422 that names the parameter and its valid range, and changes nothing.
Errors are raised as the router's exceptions, so its error middleware answers them as JSON.
"""

from __future__ import annotations

from aiohttp import web

from router.autoscaler.loop import AutoscalerLoop
from router.autoscaler.params import EndpointParams, ParamsError
from router.endpoints.models import Endpoint
from router.endpoints.store import EndpointStore
from router.errors import EndpointNotFound, InvalidRequest
from router.http.access import admin_only, status_reader
from router.http.bodies import read_json_object
from router.http.state import METRICS

__all__ = ["add_autoscaler_routes"]


def add_autoscaler_routes(
    app: web.Application, loop: AutoscalerLoop, store: EndpointStore, endpoint: str
) -> None:
    """The routes for `loop`, which scales `endpoint` of `store`."""

    def current() -> Endpoint:
        found = store.endpoints.get(endpoint)
        if found is None:
            raise EndpointNotFound(f"no endpoint named {endpoint!r}")
        return found

    async def status(request: web.Request) -> web.Response:
        return web.json_response(loop.status())

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=loop.metrics.exposition(), content_type="text/plain")

    async def params(request: web.Request) -> web.Response:
        return web.json_response(current().params.model_dump())

    async def change_params(request: web.Request) -> web.Response:
        resource = current()
        changes = await read_json_object(request, ', e.g. {"max_workers": 8}')
        try:
            new = EndpointParams.parse({**resource.params.model_dump(), **changes})
        except ParamsError as exc:
            raise InvalidRequest(str(exc)) from None
        store.put_endpoint(resource.model_copy(update={"params": new}))
        await store.save()
        return web.json_response(new.model_dump())

    async def serve_metrics_on_metrics(app: web.Application) -> None:
        app[METRICS].include(loop.metrics.registry)  # set by the startup steps, which run first

    app.on_startup.append(serve_metrics_on_metrics)
    app.router.add_get("/autoscaler", status_reader(status))
    app.router.add_get("/autoscaler/metrics", status_reader(metrics))
    app.router.add_get("/autoscaler/params", status_reader(params))
    app.router.add_patch("/autoscaler/params", admin_only(change_params))
