"""The `/status` body: each endpoint with its workers, as an operator reads it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from protocol import WorkerStatusReport
from router.endpoints.models import Endpoint
from router.http.app import create_app
from router.http.startup import router_lifetime
from router.http.state import REGISTRY, STORE
from router.http.status import status_view
from router.settings import RouterSettings
from tests.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def app(tmp_path: Path, clock: FakeClock) -> AsyncIterator[web.Application]:
    app = create_app(RouterSettings(state_dir=tmp_path, worker_stale_s=20.0), clock=clock)
    lifetime = router_lifetime(app)
    await anext(lifetime)
    app[STORE].put_endpoint(Endpoint(name="chat", api_key="k", created_at=0.0))
    yield app
    await anext(lifetime, None)


def report(worker_id: str, endpoint: str, **fields: object) -> WorkerStatusReport:
    url = f"http://10.0.0.1/{worker_id}"
    return WorkerStatusReport.model_validate(
        {"id": worker_id, "url": url, "endpoint": endpoint, "state": "ready", **fields}
    )


async def test_each_endpoint_lists_its_own_workers(app: web.Application, clock: FakeClock) -> None:
    registry = app[REGISTRY]
    registry.apply_report(report("a", "default", max_perf=100.0), clock.now)
    registry.apply_report(report("b", "chat", error_msg="out of memory"), clock.now - 1.25)
    view = status_view(app)
    assert view.waiting == 0
    default, chat = view.endpoints
    assert (default.name, default.endpoint_state, default.waiting) == ("default", "active", 0)
    assert [worker.id for worker in default.workers] == ["a"]
    [worker] = chat.workers
    assert list(worker.model_dump()) == [
        "id",
        "url",
        "state",
        "max_perf",
        "startup_perf",
        "expected_load",
        "pending_cost",
        "expected_wait_s",
        "error_msg",
        "last_report_age_s",
    ]
    assert worker.error_msg == "out of memory"
    assert worker.last_report_age_s == 1.25


async def test_a_worker_shows_its_startup_and_its_live_capacity(
    app: web.Application, clock: FakeClock
) -> None:
    app[REGISTRY].apply_report(report("a", "default", max_perf=310.0, startup_perf=38.0), clock.now)
    [worker] = status_view(app).endpoints[0].workers
    assert (worker.max_perf, worker.startup_perf) == (310.0, 38.0)
    assert worker.expected_wait_s == 0.0


async def test_a_silent_worker_shows_as_stale(app: web.Application, clock: FakeClock) -> None:
    app[REGISTRY].apply_report(report("a", "default"), clock.now)
    clock.now += 21.0
    [worker] = status_view(app).endpoints[0].workers
    assert worker.state == "stale"
    assert worker.last_report_age_s == 21.0
