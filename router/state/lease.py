"""One holder at a time, across routers: the autoscaler runs only on the router that holds its
lease (`SharedState.hold_lease`: SET NX PX in Redis, renewed by its holder only).

The holder renews every third of the lease and counts it held only until `ttl_s` after it
*asked* for its last renewal: the store's copy can lapse no earlier, so the holder always stops
believing first, and no other router takes the lease while this one still acts on it (as long
as the clocks run at the same rate). A holder that dies stops renewing: another router takes
the lease at most `ttl_s` plus a third of it later. While the store is away nobody holds it:
scaling waits, routing does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from router.logs import event
from router.state.shared import SharedState, StateUnavailable

__all__ = ["AUTOSCALER_LEASE", "AUTOSCALER_LEASE_S", "Lease", "run_while_leading"]

log = logging.getLogger(__name__)

AUTOSCALER_LEASE = "autoscaler"
AUTOSCALER_LEASE_S = 10.0


class Lease:
    def __init__(
        self,
        state: SharedState,
        name: str,
        holder: str,
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.holder = holder
        self.ttl_s = ttl_s
        self._state = state
        self._clock = clock
        self._valid_until = float("-inf")

    @property
    def held(self) -> bool:
        return self._clock() < self._valid_until

    async def renew(self) -> bool:
        """Take or renew the lease; whether this holder holds it now."""
        asked_at = self._clock()
        try:
            held = await self._state.hold_lease(self.name, self.holder, self.ttl_s)
        except StateUnavailable:
            held = False
        self._valid_until = asked_at + self.ttl_s if held else float("-inf")
        return held


async def run_while_leading(
    lease: Lease, run: Callable[[asyncio.Event], Coroutine[Any, Any, None]], stop: asyncio.Event
) -> None:
    """Until `stop`: whenever this router takes `lease`, `run(until)` (e.g. the autoscaler's
    loop), with `until` set once the lease is lost or on `stop`, and awaited before trying to
    take the lease again."""
    period_s = lease.ttl_s / 3
    while not stop.is_set():
        if not await lease.renew():
            await _wait(stop, period_s)
            continue
        event(log, "lease_taken", lease=lease.name, holder=lease.holder)
        until = asyncio.Event()
        task = asyncio.create_task(run(until))
        try:
            while not stop.is_set() and lease.held and not task.done():
                await _wait(stop, period_s)
                await lease.renew()
        finally:
            until.set()
            await task
        event(log, "lease_released", lease=lease.name, holder=lease.holder)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
