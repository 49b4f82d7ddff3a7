"""A PyWorker registers with its join token and reports with its own credential after: against
the real router, which then knows it by that credential alone."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from pyworker.state import REPORTER
from router.http.state import IDENTITIES, REGISTRY
from router.routing.registry import WorkerRecord
from tests.fakes.fake_tgi import FakeTGI
from tests.integration.pyworker.stack import ServerFactory, start_stack, wait_until


def reported_since(record: WorkerRecord, first: float) -> Callable[[], bool]:
    return lambda: record.last_report_at > first


async def test_the_worker_trades_its_join_token_for_a_credential_it_reports_with(
    aiohttp_server: ServerFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async for stack in start_stack(aiohttp_server, tmp_path, FakeTGI()):
        reporter = stack.worker.app[REPORTER]
        # Serving and registering race: the report carrying the join token may still be in flight.
        await wait_until(lambda reporter=reporter: reporter.registered)  # type: ignore[misc]
        router = stack.router.app
        identity = router[IDENTITIES].book.get("w1")
        assert identity is not None
        assert (identity.endpoint, identity.url) == ("default", stack.worker_url)
        record = router[REGISTRY].get("w1")
        assert record is not None
        await wait_until(reported_since(record, record.last_report_at))  # later ones count
        assert (await stack.ticket())["url"] == stack.worker_url
    assert "registered with router" in caplog.text
    assert "tgis-join-" not in caplog.text  # no secret of either kind is logged
    assert "tgis-worker-" not in caplog.text
