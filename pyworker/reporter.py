"""Status reports to the router: on every change, and at least every `interval_s` seconds.

Reports go to the first of the `REPORT_ADDR` routers that accepts them. A router that is down
never blocks request handling: sending happens in its own task, with back-off on failure.

Each report carries one secret as `Authorization: Bearer`: this worker's own credential once it
has one; before that its join token (`TGIS_JOIN_TOKEN`), whose report the router answers with
`{"accepted": true, "credential": "..."}`; without either, the shared worker token (anonymous
workers), or nothing. The credential is kept in memory only, and never logged.

An accepted report's `Date` header sets the router's clock as this worker reckons it
(`pyworker.tickets.router_clock`), against which tickets' expiry is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import aiohttp

from protocol import WorkerState, WorkerStatusReport
from protocol.status import MAX_ERROR_MSG_CHARS
from protocol.version import VERSION
from pyworker.admission import expected_wait_s
from pyworker.lifecycle import Lifecycle
from pyworker.load import LoadTracker
from pyworker.tickets.router_clock import RouterClock

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
    max_perf = load.capacity.max_perf
    queue_time = expected_wait_s(load.in_flight_workload, max_perf)
    return WorkerStatusReport(
        id=worker_id,
        url=url,
        endpoint=endpoint,
        loadtime=lifecycle.loadtime,
        cur_load=load.in_flight_workload,
        max_perf=max_perf,
        startup_perf=load.capacity.startup_perf,
        cur_perf=load.recent_perf(),
        error_msg=lifecycle.error_msg[:MAX_ERROR_MSG_CHARS],
        num_requests_working=load.requests_working,
        num_requests_recieved=load.requests_received,
        state=lifecycle.reported_state,
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
        join_token: str | None = None,
        router_clock: RouterClock | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._session = session
        self._addresses = list(addresses)
        self._make_report = make_report
        self._changed = changed
        self._interval_s = interval_s
        self._shared_token = token
        self._join_token = join_token
        self._credential: str | None = None
        self._router_clock = router_clock
        self._sleep = sleep

    @property
    def registered(self) -> bool:
        """The router answered this worker's join token with its own credential."""
        return self._credential is not None

    def _headers(self) -> dict[str, str]:
        secret = self._credential or self._join_token or self._shared_token
        return {"Authorization": f"Bearer {secret}"} if secret else {}

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
                sent_at = self._router_clock.local() if self._router_clock else 0.0
                async with self._session.post(
                    f"{address}/worker_status/", json=body, headers=self._headers(), timeout=timeout
                ) as response:
                    if response.status < 300:
                        if self._router_clock is not None:
                            received_at = self._router_clock.local()
                            date = response.headers.get("Date")
                            self._router_clock.observe(date, sent_at, received_at)
                        await self._take_credential(response, address)
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

    async def _take_credential(self, response: aiohttp.ClientResponse, address: str) -> None:
        """Keep the credential the router answers a join token's report with."""
        if self._credential is not None or self._join_token is None:
            return
        try:
            answer = await response.json(content_type=None)
        except ValueError:
            return
        credential = answer.get("credential") if isinstance(answer, dict) else None
        if isinstance(credential, str) and credential:
            self._credential, self._join_token = credential, None
            log.info("registered with router %s: reporting with this worker's credential", address)

    async def send_final(self, state: WorkerState = WorkerState.STOPPED) -> None:
        report = self._make_report().model_copy(update={"state": state})
        with contextlib.suppress(asyncio.CancelledError):
            await self.send(report)

    async def _wait_for_change(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._interval_s):
                await self._changed.wait()
