"""Vast.ai's own client (the `vastai` package) against our router, for the compatibility tests."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest


def generate_with_vast_client(
    router_url: str, api_key: str, payload: dict[str, Any], cost: int
) -> tuple[dict[str, Any], list[Any]]:
    """Vast's `CoroutineServerless` finds the endpoint `default` through the router at
    `router_url` (its autoscaler and web server both) and sends `payload` at `cost` once to
    /generate and once, streamed, to /generate_stream; the first's whole answer (Vast's
    envelope: `ok`, `url`, `response`) and the second's events. Skips the test where the
    `vastai` package is missing."""
    vast_client = pytest.importorskip("vastai.serverless.client.client")

    async def requests() -> tuple[dict[str, Any], list[Any]]:
        client = vast_client.CoroutineServerless(
            api_key=api_key, autoscaler_url=router_url, webserver_url=router_url
        )
        client.SSL_CERT_URL = f"{router_url}/static/jvastai_root.cer"
        async with client:
            endpoint = await client.get_endpoint("default")
            whole = await endpoint.request("/generate", payload, cost=cost)
            streamed = await endpoint.request("/generate_stream", payload, cost=cost, stream=True)
            events = [event async for event in streamed["response"]]
        return whole, events

    return asyncio.run(requests())
