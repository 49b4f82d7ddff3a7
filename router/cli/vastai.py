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
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import aiohttp

from router.cli.autoscaled import JoinTokens, ParamsChoice, instance_env, serve_autoscaled
from router.providers.vastai import VastAIConfig, VastAIProvider
from router.settings import RouterSettings

__all__ = [
    "VastSetupError",
    "add_vastai_arguments",
    "instance_env",
    "serve_with_vastai",
    "vastai_config",
]

log = logging.getLogger(__name__)

API_KEY_VARIABLE = "VAST_API_KEY"


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

    @asynccontextmanager
    async def open_vast(
        join_token: JoinTokens, worker_env: Callable[[], dict[str, str]]
    ) -> AsyncIterator[VastAIProvider]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            yield VastAIProvider(
                config, session, join_token=partial(join_token, None), instance_env=worker_env
            )

    return await serve_autoscaled(
        settings,
        open_vast,
        policy=policy,
        choose_params=choose_params,
        banner=banner,
        stopped_note=f"stopped; the Vast instances labelled {config.label!r} keep running "
        "(`vastai show instances`)",
        model_id=model_id,
        stop=stop,
    )
