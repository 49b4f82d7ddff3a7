"""The autoscaler's routes on the real router app: status, metrics, and its parameters, changed
at run time through the endpoint resource and refused with a 422 naming the valid range."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from router.autoscaler.endpoint_seam import follow_endpoint, publish_params
from router.autoscaler.http import add_autoscaler_routes
from router.autoscaler.loop import AutoscalerLoop
from router.autoscaler.params import EndpointParams
from router.autoscaler.policies import make_policy
from router.http.app import DEMAND, REGISTRY, STORE, create_app
from router.providers.simulated import SimulatedProvider
from router.settings import RouterSettings

API_KEY = "autoscaler-key"
CLIENT = {"Authorization": f"Bearer {API_KEY}"}
ADMIN = {"Authorization": "Bearer admin-key"}

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def setup(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> tuple[TestClient[Any, Any], AutoscalerLoop]:
    return await _started(aiohttp_client, tmp_path, public_status=False)


async def _started(
    aiohttp_client: ClientFactory, tmp_path: Path, *, public_status: bool
) -> tuple[TestClient[Any, Any], AutoscalerLoop]:
    settings = RouterSettings(
        api_key=API_KEY,
        admin_key="admin-key",
        state_dir=tmp_path / "state",
        public_status=public_status,
    )
    app = create_app(settings)
    provider = SimulatedProvider(clock=lambda: 0.0, report=lambda report: None)
    params = EndpointParams(min_workers=1, max_workers=4, cold_workers=2)
    loop = AutoscalerLoop(make_policy("default", params), provider, app[REGISTRY], app[DEMAND])
    add_autoscaler_routes(app, loop, app[STORE], "default")
    client = await aiohttp_client(app)  # started: the store holds the endpoint `default`
    await publish_params(app[STORE], "default", params)
    follow_endpoint(app[STORE], loop, "default", partial(make_policy, "default"))
    return client, loop


async def test_params_change_at_run_time(
    setup: tuple[TestClient[Any, Any], AutoscalerLoop],
) -> None:
    client, loop = setup
    assert (await (await client.get("/autoscaler/params", headers=ADMIN)).json())[
        "max_workers"
    ] == 4
    response = await client.patch(
        "/autoscaler/params", json={"max_workers": 8, "target_util": 0.8}, headers=ADMIN
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["max_workers"] == 8
    assert (loop.params.max_workers, loop.policy.params.target_util) == (8, 0.8)
    assert loop.params.cold_workers == 2  # what was not sent is kept
    decision = await loop.tick()
    assert decision.policy == "default"
    assert (await (await client.get("/autoscaler", headers=ADMIN)).json())["desired_active"] == 1


async def test_both_views_of_the_params_agree(
    setup: tuple[TestClient[Any, Any], AutoscalerLoop],
) -> None:
    client, loop = setup
    await client.patch("/autoscaler/params", json={"max_workers": 7}, headers=ADMIN)
    endpoint = await (await client.get("/api/v0/endpoints/default", headers=ADMIN)).json()
    assert endpoint["endpoint"]["max_workers"] == 7
    response = await client.patch(
        "/api/v0/endpoints/default", json={"cold_mult": 1.5}, headers=ADMIN
    )
    assert response.status == 200, await response.text()
    shown = await (await client.get("/autoscaler/params", headers=ADMIN)).json()
    assert (shown["max_workers"], shown["cold_mult"]) == (7, 1.5)
    assert (loop.params.max_workers, loop.params.cold_mult) == (7, 1.5)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"target_util": 1.5}, 422, "target_util: Input should be less than or equal to 1"),
        ({"target_util": 1.5}, 422, "(valid range: (0.0, 1.0])"),
        ({"max_workers": -3}, 422, "(valid range: [0, 10000])"),
        ({"max_workers": 1}, 422, "max_workers must be in [2, 10000]"),
        ({"cold_workers": 9}, 422, "max_workers must be in [9, 10000]"),
        ({"inactivity_timeout": "soon"}, 422, "inactivity_timeout: Input should be a valid number"),
        ({"surprise": 1}, 422, "surprise: Extra inputs are not permitted"),
        (["max_workers", 3], 422, "must be a JSON object"),
    ],
)
async def test_bad_params_are_refused_with_the_valid_range(
    setup: tuple[TestClient[Any, Any], AutoscalerLoop],
    body: Any,
    status: int,
    message: str,
) -> None:
    client, loop = setup
    before = loop.params
    response = await client.patch("/autoscaler/params", json=body, headers=ADMIN)
    assert response.status == status
    answer = await response.json()
    assert answer["error_type"] == "validation"
    assert message in answer["error"]
    assert loop.params is before  # nothing changed
    shown = await (await client.get("/autoscaler/params", headers=ADMIN)).json()
    assert shown == before.model_dump()


async def test_changing_params_needs_the_admin_key_and_json(
    setup: tuple[TestClient[Any, Any], AutoscalerLoop],
) -> None:
    client, loop = setup
    for headers in ({}, {"Authorization": "Bearer nope"}, CLIENT):
        response = await client.patch(
            "/autoscaler/params", json={"max_workers": 0}, headers=headers
        )
        assert response.status == 401, headers
        assert (await response.json())["error_type"] == "unauthorized"
    response = await client.patch("/autoscaler/params", data=b"{max_workers", headers=ADMIN)
    assert response.status == 400
    assert "not valid JSON" in (await response.json())["error"]
    assert loop.params.max_workers == 4


@pytest.mark.parametrize("path", ["/autoscaler", "/autoscaler/metrics", "/autoscaler/params"])
async def test_reading_the_autoscaler_needs_the_admin_key(
    setup: tuple[TestClient[Any, Any], AutoscalerLoop], path: str
) -> None:
    client, _ = setup
    for headers in ({}, CLIENT):
        response = await client.get(path, headers=headers)
        assert response.status == 401, headers
        assert "desired_active" not in await response.text()
    assert (await client.get(path, headers=ADMIN)).status == 200


async def test_public_status_opens_the_reads_but_not_the_params(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client, loop = await _started(aiohttp_client, tmp_path, public_status=True)
    for path in ("/autoscaler", "/autoscaler/metrics", "/autoscaler/params"):
        assert (await client.get(path)).status == 200, path
    response = await client.patch("/autoscaler/params", json={"max_workers": 0}, headers=CLIENT)
    assert response.status == 401
    assert loop.params.max_workers == 4


async def test_the_routers_open_metrics_show_desired_and_actual_workers(
    setup: tuple[TestClient[Any, Any], AutoscalerLoop],
) -> None:
    """One scrape of /metrics, without the admin key, has the autoscaler's metrics beside the
    router's own, and the endpoint's worker bounds: what a dashboard plots as desired vs actual."""
    client, loop = setup
    await loop.tick()
    text = await (await client.get("/metrics")).text()
    for line in (
        'tgis_autoscaler_desired_workers{pool="active"} 1.0',
        'tgis_router_endpoint_workers{bound="min_workers",endpoint="default"} 1.0',
        'tgis_router_endpoint_workers{bound="max_workers",endpoint="default"} 4.0',
        'tgis_router_endpoint_workers{bound="cold_workers",endpoint="default"} 2.0',
    ):
        assert line in text, line
    assert "# TYPE tgis_autoscaler_workers gauge" in text
