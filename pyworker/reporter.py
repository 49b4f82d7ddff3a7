"""Status reports to the router: on every change, and at least every `interval_s` seconds.

Reports go to the first of the `REPORT_ADDR` routers that accepts them. A router that is down
never blocks request handling: sending happens in its own task, with back-off on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import aiohttp

from protocol import WorkerState, WorkerStatusReport
from protocol.version import VERSION
from pyworker.admission import expected_wait_s
from pyworker.lifecycle import Lifecycle
from pyworker.load import LoadTracker

__all__ = ["UNSECURED_WARNING", "StatusReporter", "build_report", "retry_delay_s"]

log = logging.getLogger(__name__)

UNSECURED_WARNING = (
    "UNSECURED: this worker checks no routing tickets; anyone who can reach it can use its backend"
)


def retry_delay_s(failures: int, interval_s: float) -> float:
    """Back-off after `failures` failed reports in a row: 0.5 s, 1 s, 2 s ... up to the interval."""
    return min(interval_s, 0.25 * 2.0**failures)


def build_report(
    *,
    worker_id: str,
    url: str,
    endpoint: str,
    lifecycle: Lifecycle,
    load: LoadTracker,
    unsecured: bool = False,
    epoch: str = "",
) -> WorkerStatusReport:
    max_perf = lifecycle.max_perf
    queue_time = expected_wait_s(load.in_flight_workload, max_perf)
    return WorkerStatusReport(
        id=worker_id,
        url=url,
        endpoint=endpoint,
        loadtime=lifecycle.loadtime,
        cur_load=load.in_flight_workload,
        max_perf=max_perf,
        cur_perf=load.recent_perf(),
        error_msg=lifecycle.error_msg,
        num_requests_working=load.requests_working,
        num_requests_recieved=load.requests_received,
        state=lifecycle.state,
        queue_time=queue_time,
        in_flight_workload=load.in_flight_workload,
        version=VERSION,
        unsecured=unsecured,
        warnings=[UNSECURED_WARNING] if unsecured else [],
        epoch=epoch,
    )


class StatusReporter:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        addresses: Sequence[str],
        make_report: Callable[[], WorkerStatusReport],
        changed: asyncio.Event,
        *,
        interval_s: float,
        token: str | None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._session = session
        self._addresses = list(addresses)
        self._make_report = make_report
        self._changed = changed
        self._interval_s = interval_s
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._sleep = sleep

    async def run(self) -> None:
        failures = 0
        while True:
            self._changed.clear()
            if await self.send(self._make_report()):
                failures = 0
                await self._wait_for_change()
            else:
                failures += 1
                await self._sleep(retry_delay_s(failures, self._interval_s))

    async def send(self, report: WorkerStatusReport) -> bool:
        """Post one report; True when a router accepted it."""
        body = report.model_dump(mode="json")
        for address in self._addresses:
            try:
                timeout = aiohttp.ClientTimeout(total=5)
                async with self._session.post(
                    f"{address}/worker_status/", json=body, headers=self._headers, timeout=timeout
                ) as response:
                    if response.status < 300:
                        return True
                    log.warning(
                        "router %s refused the status report: %s %s",
                        address,
                        response.status,
                        (await response.text())[:200],
                    )
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning(
                    "cannot report to router %s: %s", address, str(exc) or type(exc).__name__
                )
        return False

    async def send_final(self, state: WorkerState = WorkerState.STOPPED) -> None:
        report = self._make_report().model_copy(update={"state": state})
        with contextlib.suppress(asyncio.CancelledError):
            await self.send(report)

    async def _wait_for_change(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._interval_s):
                await self._changed.wait()
