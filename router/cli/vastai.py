"""`--provider vastai` for `tgi-serverless router` and `up`: the autoscaler runs Vast.ai instances.

The router serves as always, and its autoscaler creates, stops (the cold pool), starts again
and destroys Vast instances from a Vast template (`--vast-template`, made as
templates/vast/README.md says) on the cheapest offer that matches `--vast-search`. Each new
instance gets, in its environment, a new one-time join token for the endpoint (its
`TGIS_JOIN_TOKEN`: the worker registers with it), the endpoint's name and, when the endpoint's
template names one, its `MODEL_ID` as it is at that moment. The endpoint's parameters
(`tgi-serverless endpoints update NAME --set ...`, or `--set` here) say how many.

Vast's API key comes from `VAST_API_KEY` only (a flag would show in process listings). Only
instances labelled `tgi-serverless:<endpoint>` are counted or touched. When the router stops,
its instances keep running (and billing): a restarted router finds them by their label.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import aiohttp
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
from router.providers.vastai import VastAIConfig, VastAIProvider
from router.settings import RouterSettings
from router.state.lease import AUTOSCALER_LEASE, AUTOSCALER_LEASE_S, Lease, run_while_leading
from router.tls import server_ssl_context

__all__ = ["VastSetupError", "add_vastai_arguments", "serve_with_vastai", "vastai_config"]

log = logging.getLogger(__name__)

API_KEY_VARIABLE = "VAST_API_KEY"

ParamsChoice = Callable[[EndpointParams], EndpointParams]
"""The endpoint's parameters to scale by, from those it has stored."""


class VastSetupError(ValueError):
    """`--provider vastai` cannot start: what is missing or malformed."""


def add_vastai_arguments(parser: argparse.ArgumentParser) -> None:
    vast = parser.add_argument_group("Vast.ai (--provider vastai; the key in $VAST_API_KEY)")
    vast.add_argument(
        "--vast-template", metavar="HASH", help="the Vast template's hash (templates/vast)"
    )
    vast.add_argument(
        "--vast-search",
        metavar="JSON",
        help='offer filters in Vast\'s query format, e.g. \'{"gpu_ram": {"gte": 24}}\'',
    )
    vast.add_argument(
        "--vast-disk", type=float, default=32.0, metavar="GB", help="disk per instance (32)"
    )
    vast.add_argument(
        "--vast-url", default="https://console.vast.ai", help="Vast's API (default: the console)"
    )


def vastai_config(
    args: argparse.Namespace, environ: Mapping[str, str], endpoint: str
) -> VastAIConfig:
    """The provider's configuration from the flags and `VAST_API_KEY`; VastSetupError names
    what is missing."""
    api_key = environ.get(API_KEY_VARIABLE, "")
    if not api_key:
        raise VastSetupError(f"--provider vastai needs Vast's API key in ${API_KEY_VARIABLE}")
    if not args.vast_template:
        raise VastSetupError("--provider vastai needs --vast-template HASH (templates/vast)")
    return VastAIConfig(
        api_key=api_key,
        template_hash=args.vast_template,
        endpoint=endpoint,
        base_url=args.vast_url,
        search=_search(args.vast_search),
        disk_gb=args.vast_disk,
    )


def _search(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        search = json.loads(text)
    except ValueError as exc:
        raise VastSetupError(f"--vast-search is not JSON: {exc}") from None
    if not isinstance(search, dict):
        raise VastSetupError('--vast-search must be a JSON object: {"gpu_ram": {"gte": 24}}')
    return search


def instance_env(store: EndpointStore, endpoint: str) -> dict[str, str]:
    """What a new instance gets besides its join token: the endpoint it serves and, when the
    endpoint's template names one, its model."""
    env = {"TGIS_ENDPOINT": endpoint}
    resource = store.endpoints.get(endpoint)
    if resource is not None and resource.template.model_id:
        env["MODEL_ID"] = resource.template.model_id
    return env


async def serve_with_vastai(
    settings: RouterSettings,
    config: VastAIConfig,
    *,
    policy: str,
    choose_params: ParamsChoice,
    banner: str,
    model_id: str = "",
    stop: asyncio.Event | None = None,
) -> int:
    """Serve the router with its autoscaler on Vast.ai until SIGINT or SIGTERM (or `stop`, when
    given, is set), printing `banner` once it listens; `model_id`, when given, becomes the
    endpoint template's (the instances' MODEL_ID)."""
    try:
        ssl_context = server_ssl_context(settings.tls_cert, settings.tls_key)
    except (OSError, ValueError) as exc:
        print(f"cannot load the TLS certificate: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings)
    store, identities = app[STORE], app[IDENTITIES]

    async def join_token() -> str:
        now, ttl_s = time.time(), settings.join_token_ttl_s
        return await identities.mint(settings.endpoint, now=now, ttl_s=ttl_s)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        provider = VastAIProvider(
            config,
            session,
            join_token=join_token,
            instance_env=partial(instance_env, store, settings.endpoint),
        )
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
            print(
                f"stopped; the Vast instances labelled {config.label!r} keep running "
                "(`vastai show instances`)",
                file=sys.stderr,
                flush=True,
            )
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
