"""Status reports to the routers: on every change, and at least every `interval_s` seconds.

Every report goes to every `REPORT_ADDR` router, so that any of them can route to this worker.
Each router has its own task, back-off and credential: a router that is down, refuses or hangs
slows neither the others nor request handling.

Each report carries one secret as `Authorization: Bearer`: this worker's own credential from
that router once it has one; before that its join token (`TGIS_JOIN_TOKEN`), whose report the
router answers with `{"accepted": true, "credential": "..."}`; without either, the shared worker
token (anonymous workers), or nothing. One join token serves every router (routers that share
their identities: the credential the first router answers is then presented to the others); a
comma-separated list of as many tokens as routers gives each router its own, for routers that do
not. Credentials are kept in memory only, and never logged.

An accepted report's `Date` header sets the routers' clock as this worker reckons it
(`pyworker.tickets.router_clock`), against which tickets' expiry is checked. With several
routers, every router's answer feeds the one reckoning: routers are expected to keep their
clocks in step with each other (NTP), as they sign tickets with the same lifetime.
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

__all__ = [
    "UNSECURED_WARNING",
    "Registration",
    "StatusReporter",
    "build_report",
    "registrations",
    "retry_delay_s",
]

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


class Registration:
    """One identity at one or more routers: the join token until a router answers it with this
    worker's credential, then that credential. Routers that share it take turns: while it has no
    credential yet, one report at a time carries its join token."""

    def __init__(self, join_token: str | None) -> None:
        self.join_token = join_token
        self.credential: str | None = None
        self.joining = asyncio.Lock()

    @property
    def registered(self) -> bool:
        return self.credential is not None

    def secret(self) -> str | None:
        return self.credential or self.join_token


def registrations(join_tokens: Sequence[str], routers: int) -> list[Registration]:
    """Each router's registration: one shared by all for one join token (or none), one each for
    as many tokens as routers. ValueError for any other count."""
    if len(join_tokens) <= 1:
        shared = Registration(join_tokens[0] if join_tokens else None)
        return [shared] * routers
    if len(join_tokens) != routers:
        raise ValueError(
            f"{len(join_tokens)} join tokens for {routers} routers: give one token for all "
            "routers, or one per router in REPORT_ADDR's order"
        )
    return [Registration(token) for token in join_tokens]


class StatusReporter:
    """Sends this worker's reports to each router in `addresses`, each from its own task."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        addresses: Sequence[str],
        make_report: Callable[[], WorkerStatusReport],
        changed: asyncio.Event,
        *,
        interval_s: float,
        token: str | None,
        join_tokens: Sequence[str] = (),
        router_clock: RouterClock | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`token`: the shared worker token, if any; `join_tokens`: none, one for every router,
        or one per router in the order of `addresses` (`registrations`)."""
        self._make_report = make_report
        self._changed = changed
        self._links = [
            _RouterLink(
                session,
                address,
                registration,
                token,
                interval_s=interval_s,
                sleep=sleep,
                router_clock=router_clock,
            )
            for address, registration in zip(
                addresses, registrations(join_tokens, len(addresses)), strict=True
            )
        ]

    @property
    def registered(self) -> bool:
        """This worker had join tokens, and every router answered its token with a credential."""
        joining = [link for link in self._links if link.joins]
        return bool(joining) and all(link.registration.registered for link in joining)

    async def run(self) -> None:
        """Report to every router until cancelled: each link on its own, woken on each change."""
        tasks = [
            asyncio.create_task(link.run(self._make_report), name=f"report-to-{link.address}")
            for link in self._links
        ]
        try:
            while True:
                await self._changed.wait()
                self._changed.clear()
                for link in self._links:
                    link.wake.set()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def send(self, report: WorkerStatusReport) -> bool:
        """Post one report to every router at once; True when at least one accepted it."""
        accepted = await asyncio.gather(*(link.send(report) for link in self._links))
        return any(accepted)

    async def send_final(self, state: WorkerState = WorkerState.STOPPED) -> None:
        report = self._make_report().model_copy(update={"state": state})
        with contextlib.suppress(asyncio.CancelledError):
            await self.send(report)


class _RouterLink:
    """The reports to one router: its registration, its back-off, its wake-up event."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        address: str,
        registration: Registration,
        shared_token: str | None,
        *,
        interval_s: float,
        sleep: Callable[[float], Awaitable[None]],
        router_clock: RouterClock | None = None,
    ) -> None:
        self.address = address
        self.registration = registration
        self.wake = asyncio.Event()
        self.joins = registration.join_token is not None
        self._session = session
        self._shared_token = shared_token
        self._interval_s = interval_s
        self._sleep = sleep
        self._router_clock = router_clock

    async def run(self, make_report: Callable[[], WorkerStatusReport]) -> None:
        failures = 0
        while True:
            self.wake.clear()
            if await self.send(make_report()):
                failures = 0
                await self._wait_for_wake()
            else:
                failures += 1
                await self._sleep(retry_delay_s(failures, self._interval_s))

    async def send(self, report: WorkerStatusReport) -> bool:
        """Post one report to this router; True when it accepted it."""
        if self.registration.join_token is None:
            return await self._post(report)
        async with self.registration.joining:  # one join token in flight per registration
            return await self._post(report)

    async def _post(self, report: WorkerStatusReport) -> bool:
        body = report.model_dump(mode="json")
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            sent_at = self._router_clock.local() if self._router_clock else 0.0
            async with self._session.post(
                f"{self.address}/worker_status/",
                json=body,
                headers=self._headers(),
                timeout=timeout,
            ) as response:
                if response.status < 300:
                    if self._router_clock is not None:
                        received_at = self._router_clock.local()
                        date = response.headers.get("Date")
                        self._router_clock.observe(date, sent_at, received_at)
                    await self._take_credential(response)
                    return True
                log.warning(
                    "router %s refused the status report: %s %s",
                    self.address,
                    response.status,
                    (await response.text())[:200],
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            log.warning("cannot report to router %s: %s", self.address, reason)
        return False

    def _headers(self) -> dict[str, str]:
        secret = self.registration.secret() or self._shared_token
        return {"Authorization": f"Bearer {secret}"} if secret else {}

    async def _take_credential(self, response: aiohttp.ClientResponse) -> None:
        """Keep the credential the router answers a join token's report with."""
        registration = self.registration
        if registration.registered or registration.join_token is None:
            return
        try:
            answer = await response.json(content_type=None)
        except ValueError:
            return
        credential = answer.get("credential") if isinstance(answer, dict) else None
        if isinstance(credential, str) and credential:
            registration.credential, registration.join_token = credential, None
            log.info(
                "registered with router %s: reporting with this worker's credential", self.address
            )

    async def _wait_for_wake(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._interval_s):
                await self.wake.wait()
