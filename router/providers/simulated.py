"""The simulated provider: virtual workers with a configurable start time, cold resume time,
max_perf and failure rate, on an injected clock. Each running worker reports to the router as
a PyWorker would (`loading` until it has started, then `ready`); `step()` sends the reports.

It can also misbehave on purpose, for the loop's fault tests: fail or hang its calls.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

from protocol import WorkerState, WorkerStatusReport
from router.providers.base import ProviderError, ProviderState, ProviderWorker

__all__ = ["SimulatedProvider", "VirtualWorker"]

Reporter = Callable[[WorkerStatusReport], None]


@dataclass
class VirtualWorker:
    id: str
    state: ProviderState
    since: float
    ready_at: float
    fails: bool = False
    in_flight: float = 0.0


class SimulatedProvider:
    def __init__(
        self,
        *,
        clock: Callable[[], float],
        report: Reporter,
        endpoint: str = "default",
        start_s: float = 60.0,
        resume_s: float = 5.0,
        max_perf: float = 400.0,
        failure_rate: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.report = report
        self.endpoint = endpoint
        self.start_s, self.resume_s, self.max_perf = start_s, resume_s, max_perf
        self.failure_rate = failure_rate
        self.rng = rng or random.Random(0)
        self.workers: dict[str, VirtualWorker] = {}
        self.fail_calls = 0  # the next N calls raise ProviderError
        self.hang = False  # calls never return
        self.calls: list[str] = []
        self._made = 0

    async def _enter(self, call: str) -> None:
        self.calls.append(call)
        if self.hang:
            await asyncio.Event().wait()
        if self.fail_calls > 0:
            self.fail_calls -= 1
            raise ProviderError(f"simulated failure in {call}")

    async def start(self) -> ProviderWorker:
        await self._enter("start")
        self._made += 1
        now = self.clock()
        worker = VirtualWorker(f"sim-{self._made}", ProviderState.RUNNING, now, now + self.start_s)
        worker.fails = self.rng.random() < self.failure_rate
        self.workers[worker.id] = worker
        return self._view(worker)

    async def stop_to_cold(self, worker_id: str) -> None:
        await self._enter("stop_to_cold")
        worker = self._get(worker_id)
        self._send(worker, WorkerState.STOPPED)
        worker.state, worker.since = ProviderState.STOPPED, self.clock()

    async def resume(self, worker_id: str) -> None:
        await self._enter("resume")
        worker = self._get(worker_id)
        now = self.clock()
        worker.state, worker.since = ProviderState.RUNNING, now
        worker.ready_at = now + self.resume_s

    async def destroy(self, worker_id: str) -> None:
        await self._enter("destroy")
        worker = self.workers.pop(worker_id, None)
        if worker is not None:
            self._send(worker, WorkerState.STOPPED)

    async def list(self) -> list[ProviderWorker]:
        await self._enter("list")
        return [self._view(worker) for worker in self.workers.values()]

    def kill(self, worker_id: str) -> None:
        """The worker dies under us (for reconciliation tests)."""
        self._get(worker_id).state = ProviderState.EXITED

    def step(self) -> None:
        """Each running worker reports, as a PyWorker does at least every few seconds."""
        now = self.clock()
        for worker in self.workers.values():
            if worker.state is not ProviderState.RUNNING:
                continue
            if worker.fails and now >= worker.ready_at:
                worker.state = ProviderState.EXITED
                continue
            ready = now >= worker.ready_at
            self._send(worker, WorkerState.READY if ready else WorkerState.LOADING)

    def _send(self, worker: VirtualWorker, state: WorkerState) -> None:
        self.report(
            WorkerStatusReport(
                id=worker.id,
                url=f"sim://{worker.id}",
                endpoint=self.endpoint,
                state=state,
                max_perf=self.max_perf if state is WorkerState.READY else 0.0,
                in_flight_workload=worker.in_flight,
            )
        )

    def _get(self, worker_id: str) -> VirtualWorker:
        worker = self.workers.get(worker_id)
        if worker is None:
            raise ProviderError(f"no simulated worker {worker_id!r}")
        return worker

    @staticmethod
    def _view(worker: VirtualWorker) -> ProviderWorker:
        return ProviderWorker(worker.id, worker.state, f"sim://{worker.id}", worker.since)
