"""The worker's state machine and the facts a status report is made of.

    starting → loading → benchmarking → ready ⇄ busy → draining → stopped
                                     ↘ error (cleared when the backend recovers)

Once draining, the only way on is `stopped`.

A worker may also be parked (`park()`, on SIGUSR1 from the local provider): it keeps its
process, its backend's model, its keys, its registration and its measured capacity, reports
`parked` and takes no requests until `resume()` (SIGUSR2), which reports its state again at
once. Parking is beside the state above, not one of its steps: the backend's health is still
followed while parked, and an error shows as `error`.

Every change sets `changed`, which wakes the reporter at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from protocol import WorkerState

__all__ = ["Lifecycle"]

log = logging.getLogger(__name__)


@dataclass
class Lifecycle:
    clock: Callable[[], float]
    started_at: float = 0.0
    state: WorkerState = WorkerState.STARTING
    error_msg: str = ""
    max_new_tokens_default: int = 0
    loadtime: float = 0.0
    parked: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _serving: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.started_at = self.clock()

    async def wait_until_serving(self) -> None:
        await self._serving.wait()

    @property
    def serving(self) -> bool:
        return self.state.routable and not self.parked

    @property
    def reported_state(self) -> WorkerState:
        """The state the worker shows: `parked` over a routable one while parked."""
        return WorkerState.PARKED if self.parked and self.state.routable else self.state

    def park(self) -> None:
        """Take no new requests (those in flight finish), holding everything else."""
        self._set_parked(True)

    def resume(self) -> None:
        """Serve again, as before `park()`."""
        self._set_parked(False)

    def _set_parked(self, parked: bool) -> None:
        if parked == self.parked or self.winding_down:
            return
        log.info("worker %s", "parked" if parked else "resumed")
        self.parked = parked
        self._update_serving()
        self.changed.set()

    def _update_serving(self) -> None:
        if self.serving:
            self._serving.set()
        else:
            self._serving.clear()

    @property
    def winding_down(self) -> bool:
        return self.state in (WorkerState.DRAINING, WorkerState.STOPPED)

    def move_to(self, state: WorkerState, error_msg: str = "") -> None:
        if state == self.state and error_msg == self.error_msg:
            return
        if self.winding_down and state is not WorkerState.STOPPED:
            return  # draining only ends in stopped: no health check may revive the worker
        if state is WorkerState.ERROR:
            log.error("worker state %s → error: %s", self.state.value, error_msg)
        else:
            log.info("worker state %s → %s", self.state.value, state.value)
        self.state = state
        self.error_msg = error_msg
        self._update_serving()
        self.changed.set()

    def set_busy(self, busy: bool) -> None:
        """ready ⇄ busy (both routable): busy while requests queue for a relay slot."""
        if busy and self.state is WorkerState.READY:
            self.state = WorkerState.BUSY
        elif not busy and self.state is WorkerState.BUSY:
            self.state = WorkerState.READY
        else:
            return
        self.changed.set()

    def mark_ready(self, max_new_tokens_default: int) -> None:
        self.max_new_tokens_default = max_new_tokens_default
        self.loadtime = self.clock() - self.started_at
        self.move_to(WorkerState.READY)
