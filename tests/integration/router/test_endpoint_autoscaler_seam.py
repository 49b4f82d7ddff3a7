"""`up` runs the autoscaler by the endpoint resource's parameters: changing them through the
management API changes what the loop scales by."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from router.autoscaler.endpoint_seam import follow_endpoint, publish_params
from router.autoscaler.loop import AutoscalerLoop
from router.autoscaler.params import EndpointParams
from router.autoscaler.policies import make_policy
from router.http.app import DEMAND, REGISTRY, STORE, create_app
from router.providers.simulated import SimulatedProvider
from router.settings import RouterSettings

ADMIN = {"Authorization": "Bearer admin"}

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@dataclass
class Seam:
    """A router whose endpoint `default` (min 1, max 3 workers) is followed by a loop."""

    client: TestClient[Any, Any]
    loop: AutoscalerLoop
    provider: SimulatedProvider


@pytest.fixture
async def seam(aiohttp_client: ClientFactory, tmp_path: Path) -> Seam:
    return await start_seam(aiohttp_client, tmp_path)


async def start_seam(aiohttp_client: ClientFactory, state_dir: Path) -> Seam:
    """What `up` builds: a router (its state in `state_dir`) and a loop that follows it."""
    app = create_app(RouterSettings(api_key="k", admin_key="admin", state_dir=state_dir))
    params = EndpointParams(min_workers=1, max_workers=3, cold_workers=0)
    provider = SimulatedProvider(clock=lambda: 0.0, report=lambda report: None)
    loop = AutoscalerLoop(make_policy("default", params), provider, app[REGISTRY], app[DEMAND])
    client = await aiohttp_client(app)
    await publish_params(app[STORE], "default", params, model_id="org/tiny")
    follow_endpoint(app[STORE], loop, "default", partial(make_policy, "default"))
    return Seam(client, loop, provider)


async def test_the_loop_follows_the_endpoints_parameters(seam: Seam) -> None:
    client, loop = seam.client, seam.loop
    shown = await (await client.get("/api/v0/endpoints/default", headers=ADMIN)).json()
    assert (shown["endpoint"]["max_workers"], shown["endpoint"]["min_workers"]) == (3, 1)
    assert shown["endpoint"]["template"]["MODEL_ID"] == "org/tiny"
    response = await client.patch(
        "/api/v0/endpoints/default", json={"max_workers": 6, "target_util": 0.6}, headers=ADMIN
    )
    assert response.status == 200
    assert (loop.params.max_workers, loop.params.target_util) == (6, 0.6)
    assert loop.policy.params == loop.params
    await client.patch("/api/v0/endpoints/other", json={"max_workers": 1}, headers=ADMIN)
    assert loop.params.max_workers == 6

    await client.patch(
        "/api/v0/endpoints/default", json={"endpoint_state": "stopped"}, headers=ADMIN
    )
    assert (loop.params.max_workers, loop.params.min_workers, loop.params.cold_workers) == (0, 0, 0)
    await client.patch(
        "/api/v0/endpoints/default", json={"endpoint_state": "active"}, headers=ADMIN
    )
    assert loop.params.max_workers == 6


async def test_a_suspended_endpoint_is_not_managed_until_it_is_active_again(
    seam: Seam,
) -> None:
    client, loop, provider = seam.client, seam.loop, seam.provider
    response = await client.patch(
        "/api/v0/endpoints/default", json={"endpoint_state": "suspended"}, headers=ADMIN
    )
    assert response.status == 200
    held = await loop.tick()  # the minimum asks for a worker, but a suspended endpoint waits
    assert held.actions == ()
    assert "suspended" in held.reason
    assert await provider.list() == []

    await client.patch(
        "/api/v0/endpoints/default", json={"endpoint_state": "active"}, headers=ADMIN
    )
    acted = await loop.tick()
    assert [action.kind.value for action in acted.actions] == ["start"]
    assert len(await provider.list()) == 1


async def test_an_endpoint_suspended_before_a_restart_stays_unmanaged(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    before = await start_seam(aiohttp_client, tmp_path)
    response = await before.client.patch(
        "/api/v0/endpoints/default", json={"endpoint_state": "suspended"}, headers=ADMIN
    )
    assert response.status == 200
    await before.client.close()

    after = await start_seam(aiohttp_client, tmp_path)  # the saved state says suspended
    assert after.loop.suspended
    assert (await after.loop.tick()).actions == ()
    assert await after.provider.list() == []
