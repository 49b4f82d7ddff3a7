"""Vast's own client (`vastai` from PyPI) against our fake Vast API: the fake speaks the real
wire format, and what that client creates and stops, our vastai provider sees, and the other
way round."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from vastai.api import client as client_api
from vastai.api import instances as instances_api
from vastai.api import offers as offers_api

from router.providers.base import ProviderState
from router.providers.vastai import VastAIConfig, VastAIProvider
from tests.fakes.fake_vastai import FakeVast, served_fake_vast

KEY = "vast-key"
LABEL = "tgi-serverless:default"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeVast, str]]:
    state = FakeVast(api_key=KEY)
    async with served_fake_vast(state) as url:
        yield state, url


async def vast(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Vast's client is synchronous (requests): run it off the event loop serving the fake."""
    return await asyncio.to_thread(call, *args, **kwargs)


async def test_vasts_client_and_our_provider_share_the_wire_format(
    fake: tuple[FakeVast, str],
) -> None:
    state, url = fake
    client = client_api.VastClient(api_key=KEY, server_url=url, retry=1)
    offers = await vast(offers_api.search_offers, client, order=[["dph_total", "asc"]])
    assert [offer["id"] for offer in offers] == [12, 11]
    created = await vast(
        instances_api.create_instance, client, 12, template_hash="tmpl-abc", disk=32, label=LABEL
    )
    assert created["success"] is True
    theirs = str(created["new_contract"])

    async with aiohttp.ClientSession() as session:
        provider = VastAIProvider(
            VastAIConfig(api_key=KEY, template_hash="tmpl-abc", base_url=url), session
        )
        ours = (await provider.start()).id
        assert {w.id for w in await provider.list()} == {theirs, ours}
        # Both created an instance from the template on the cheapest offer, with the same body.
        creates = [
            body for method, path, body in state.requests if method == "PUT" and "/asks/" in path
        ]
        assert [body["template_hash_id"] for body in creates] == ["tmpl-abc", "tmpl-abc"]
        assert creates[0]["client_id"] == creates[1]["client_id"] == "me"
        assert creates[0]["disk"] == creates[1]["disk"] == 32
        searches = [body for method, path, body in state.requests if path == "/api/v0/bundles/"]
        assert set(searches[0]) == set(searches[1])  # the same filters, order, type and storage
        assert searches[1]["type"] == "on-demand"

        await vast(instances_api.stop_instance, client, int(ours))
        states = {w.id: w.state for w in await provider.list()}
        assert states[ours] is ProviderState.STOPPED  # their stop is our cold pool
        await provider.resume(ours)
        shown = await vast(instances_api.show_instance, client, int(ours))
        assert shown["intended_status"] == "running"
        await provider.stop_to_cold(theirs)
        listed = await vast(instances_api.show_instances, client)
        assert {str(row["id"]): row["intended_status"] for row in listed} == {
            theirs: "stopped",
            ours: "running",
        }
        await vast(instances_api.destroy_instance, client, int(ours))
        await provider.destroy(theirs)
        assert await provider.list() == []

    # Every request carried the key as Vast's client sends it, and the same paths for the same
    # operations (the client's and the provider's alike).
    paths = {(method, path.rstrip("0123456789/")) for method, path, _ in state.requests}
    assert paths == {
        ("POST", "/api/v0/bundles"),
        ("PUT", "/api/v0/asks"),
        ("GET", "/api/v0/instances"),
        ("GET", "/api/v1/instances"),
        ("PUT", "/api/v0/instances"),
        ("DELETE", "/api/v0/instances"),
    }
