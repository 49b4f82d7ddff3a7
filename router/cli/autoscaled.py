"""The router with its autoscaler on a provider (`--provider vastai`, `--provider kubernetes`):
what every provider's command shares. It serves the router, stores the endpoint's parameters
(and model), runs the autoscaler loop on the provider until SIGINT or SIGTERM, and stops."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from functools import partial

from aiohttp import web

from httpedge.connections import GuardedSite, connection_runner
from router.autoscaler.endpoint_seam import follow_endpoint
from router.autoscaler.http import add_autoscaler_routes
from router.autoscaler.loop import AutoscalerLoop, stop_task
from router.autoscaler.params import EndpointParams
from router.autoscaler.policies import make_policy
from router.endpoints.store import EndpointStore
from router.http.app import DEMAND, IDENTITIES, REGISTRY, STORE, create_app
from router.http.state import SHARED_STATE, STATE_SYNC
from router.providers.base import Provider
from router.settings import RouterSettings
from router.state.lease import AUTOSCALER_LEASE, AUTOSCALER_LEASE_S, Lease, run_while_leading
from router.tls import server_ssl_context

__all__ = ["JoinTokens", "ParamsChoice", "ProviderOpener", "instance_env", "serve_autoscaled"]

ParamsChoice = Callable[[EndpointParams], EndpointParams]
"""The endpoint's parameters to scale by, from those it has stored."""

JoinTokens = Callable[[str | None], Awaitable[str]]
"""A new one-time join token for the router's endpoint, bound to this worker id when given."""

ProviderOpener = Callable[
    [JoinTokens, Callable[[], dict[str, str]]], AbstractAsyncContextManager[Provider]
]
"""Opens the provider, given the join-token minter and what each new worker's environment
holds (`instance_env`), and closes what it opened (sessions) on exit."""


def instance_env(store: EndpointStore, endpoint: str) -> dict[str, str]:
    """What a new worker gets besides its join token: the endpoint it serves and, when the
    endpoint's template names one, its model."""
    env = {"TGIS_ENDPOINT": endpoint}
    resource = store.endpoints.get(endpoint)
    if resource is not None and resource.template.model_id:
        env["MODEL_ID"] = resource.template.model_id
    return env


async def serve_autoscaled(
    settings: RouterSettings,
    open_provider: ProviderOpener,
    *,
    policy: str,
    choose_params: ParamsChoice,
    banner: str,
    stopped_note: str,
    model_id: str = "",
    stop: asyncio.Event | None = None,
) -> int:
    """Serve the router with its autoscaler on the provider `open_provider` opens until SIGINT
    or SIGTERM (or `stop`, when given, is set), printing `banner` once it listens and
    `stopped_note` (what keeps running) once stopped; `model_id`, when given, becomes the
    endpoint template's (the workers' MODEL_ID)."""
    try:
        ssl_context = server_ssl_context(settings.tls_cert, settings.tls_key)
    except (OSError, ValueError) as exc:
        print(f"cannot load the TLS certificate: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings)
    store, identities = app[STORE], app[IDENTITIES]

    async def join_token(worker_id: str | None) -> str:
        now, ttl_s = time.time(), settings.join_token_ttl_s
        return await identities.mint(settings.endpoint, now=now, ttl_s=ttl_s, worker_id=worker_id)

    worker_env = partial(instance_env, store, settings.endpoint)
    async with open_provider(join_token, worker_env) as provider:
        first = make_policy(policy, choose_params(EndpointParams()))
        loop = AutoscalerLoop(first, provider, app[REGISTRY], app[DEMAND])
        add_autoscaler_routes(app, loop, store, settings.endpoint)
        runner = connection_runner(app, settings.connection_limits)
        await runner.setup()
        try:
            await _publish(store, settings.endpoint, choose_params, model_id)
            follow_endpoint(store, loop, settings.endpoint, partial(make_policy, policy))
            site = GuardedSite(
                runner,
                settings.connection_limits,
                settings.host,
                settings.port,
                ssl_context=ssl_context,
            )
            await site.start()
            print(banner, flush=True)
            stop = stop or _stop_event()
            autoscaler = asyncio.create_task(_run_autoscaler(app, loop, stop))
            await stop.wait()
            await stop_task(autoscaler)
            print(stopped_note, file=sys.stderr, flush=True)
            return 0
        finally:
            await runner.cleanup()


async def _run_autoscaler(app: web.Application, loop: AutoscalerLoop, stop: asyncio.Event) -> None:
    """The autoscaler's loop until `stop`; with several routers on shared state, only while
    this router holds the autoscaler's lease (docs/scaleout.md)."""
    state, sync = app.get(SHARED_STATE), app.get(STATE_SYNC)
    if state is None or sync is None:
        await loop.run(stop)
        return
    lease = Lease(state, AUTOSCALER_LEASE, sync.router_id, AUTOSCALER_LEASE_S)
    await run_while_leading(lease, loop.run, stop)


async def _publish(
    store: EndpointStore, endpoint: str, choose_params: ParamsChoice, model_id: str
) -> None:
    """Store the parameters `choose_params` picks (and `model_id` in the endpoint's template,
    when given), if they differ from the endpoint's."""
    resource = store.endpoints.get(endpoint)
    if resource is None:
        return
    template = resource.template
    if model_id:
        template = template.model_copy(update={"model_id": model_id})
    update = {"params": choose_params(resource.params), "template": template}
    if any(getattr(resource, field) != value for field, value in update.items()):
        store.put_endpoint(resource.model_copy(update=update))
        await store.save()


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop
