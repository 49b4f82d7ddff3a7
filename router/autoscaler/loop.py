"""The loop: every tick, observe the fleet, ask the policy, apply its actions through the
provider, and carry out what takes several ticks (drains, warming for the cold pool).

It reconciles with what really runs: the provider's list is the truth, so a worker that died
shows up as failed and is destroyed and replaced, and one that never serves within
ready_timeout_s is destroyed. Provider calls are bounded (timeout, one retry); after repeated
failures the loop stops creating workers for a back-off period instead of piling them up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

from router.autoscaler.decision import Action, ActionKind, Decision
from router.autoscaler.demand import DemandSignal
from router.autoscaler.fleet_view import Intent, IntentKind, observe
from router.autoscaler.metrics import AutoscalerMetrics
from router.autoscaler.observation import Observation, WorkerPhase
from router.autoscaler.policy import Policy
from router.providers.base import Provider, ProviderError, ProviderState, ProviderWorker
from router.routing.registry import WorkerRegistry

__all__ = ["AutoscalerLoop", "stop_task"]

log = logging.getLogger(__name__)

T = TypeVar("T")

FAILURES_BEFORE_BACKOFF = 3
BACKOFF_S = 30.0
CALL_TIMEOUT_S = 60.0
DECISIONS_KEPT = 200
STATUS_DECISIONS = 10


class AutoscalerLoop:
    def __init__(
        self,
        policy: Policy,
        provider: Provider,
        registry: WorkerRegistry,
        demand: DemandSignal,
        *,
        clock: Callable[[], float] = time.time,
        call_timeout_s: float = CALL_TIMEOUT_S,
    ) -> None:
        self.policy = policy
        self.params = policy.params
        self.provider = provider
        self.registry = registry
        self.demand = demand
        self.clock = clock
        self.call_timeout_s = call_timeout_s
        self.intents: dict[str, Intent] = {}
        self.decisions: deque[Decision] = deque(maxlen=DECISIONS_KEPT)  # every tick's
        self.changes: deque[Decision] = deque(maxlen=DECISIONS_KEPT)  # those that acted
        self.last_observation: Observation | None = None
        self.failures = 0
        self.backoff_until = 0.0
        self.error = ""
        self.metrics = AutoscalerMetrics()
        self._last_tick: float | None = None
        self.suspended = False  # Vast's `suspended` endpoint: watch the fleet, change nothing

    def reconfigure(self, policy: Policy) -> None:
        """Decide with `policy` (new parameters) from the next tick on; the fleet, the intents
        (drains, warming) and the decisions so far are kept."""
        self.policy, self.params = policy, policy.params
        log.info("autoscaler: parameters changed: %s", policy.params.model_dump())

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every tick_s (at once when a request waits with no worker) until `stop`."""
        while not stop.is_set():
            try:
                await self.tick()
            except ProviderError as exc:
                self._failed(exc)
            await self._pause(stop)

    async def _pause(self, stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.demand.wake.wait())]
        try:
            await asyncio.wait(waits, timeout=self.params.tick_s, return_when="FIRST_COMPLETED")
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
            self.demand.wake.clear()

    async def tick(self) -> Decision:
        now = self.clock()
        self.registry.expire_due(now)  # no expired ticket, no stale worker's load, is demand
        interval = now - self._last_tick if self._last_tick is not None else self.params.tick_s
        self._last_tick = now
        workers = await self._call(self.provider.list)
        if not self.suspended and await self._settle(workers, now):
            workers = await self._call(self.provider.list)  # some moved: see where they are
        obs = observe(
            workers,
            self.registry,
            self.intents,
            self.demand,
            self.params,
            now,
            max(interval, 1e-3),
        )
        self.last_observation = obs
        decision = self._hold(obs, now) if self.suspended else self.policy.decide(obs)
        self.decisions.append(decision)
        self.metrics.record(obs, decision)
        if decision.changes:
            self.changes.append(decision)
            log.info("autoscaler: %s", decision.summary())
        await self._apply(decision.actions, now)
        return decision

    def _hold(self, obs: Observation, now: float) -> Decision:
        """The decision of a suspended endpoint: keep every worker as it is, take no action."""
        return Decision(
            now=now,
            policy=self.policy.name,
            desired_active=obs.active,
            desired_cold=obs.cold_pool,
            actions=(),
            reason="endpoint suspended: the autoscaler manages nothing until it is active",
        )

    async def _settle(self, workers: list[ProviderWorker], now: float) -> bool:
        """Finish what takes several ticks (warming, resuming, draining); True if a worker
        was stopped or destroyed. Not while suspended: then every worker stays as it is."""
        states = {worker.id: worker.state for worker in workers}
        moved = False
        for worker_id, intent in list(self.intents.items()):
            if worker_id not in states or states[worker_id] is ProviderState.EXITED:
                self._forget(worker_id)
            elif intent.kind is IntentKind.DRAINING and self._drained(worker_id, intent, now):
                await self._retire(worker_id, to_cold=intent.to_cold)
                moved = True
            elif intent.kind is not IntentKind.DRAINING and self._serving(worker_id, now):
                if intent.kind is IntentKind.WARMING:
                    self.registry.exclude(worker_id)
                    await self._retire(worker_id, to_cold=True)
                    moved = True
                else:
                    del self.intents[worker_id]
        return moved

    def _serving(self, worker_id: str, now: float) -> bool:
        record = self.registry.get(worker_id)
        return record is not None and record.state.routable and self.registry.is_fresh(record, now)

    def _drained(self, worker_id: str, intent: Intent, now: float) -> bool:
        record = self.registry.get(worker_id)
        idle = record is None or record.expected_load <= 0
        return idle or now - intent.since >= self.params.drain_grace_s

    async def _retire(self, worker_id: str, *, to_cold: bool) -> None:
        """Stop to cold, keeping the worker's registration (a parked local PyWorker goes on
        reporting with its credential; it stays excluded until resumed), or destroy it."""
        if to_cold:
            await self._call(lambda: self.provider.stop_to_cold(worker_id))
        else:
            await self._call(lambda: self.provider.destroy(worker_id))
            self.registry.remove(worker_id)
        self.intents.pop(worker_id, None)

    def _forget(self, worker_id: str) -> None:
        self.intents.pop(worker_id, None)
        self.registry.include(worker_id)

    async def _apply(self, actions: tuple[Action, ...], now: float) -> None:
        for action in actions:
            try:
                if await self._apply_one(action, now):
                    self.failures, self.error = 0, ""
                    self.metrics.provider_failures.set(0)
            except ProviderError as exc:
                self._failed(exc)

    async def _apply_one(self, action: Action, now: float) -> bool:
        """Apply one action; False if it was skipped (starts, while backing off)."""
        kind, worker_id = action.kind, action.worker_id or ""
        if kind in (ActionKind.START, ActionKind.START_COLD):
            if now < self.backoff_until:
                return False  # the provider keeps failing: create nothing for now
            worker = await self._call(self.provider.start)
            if kind is ActionKind.START_COLD:
                self.intents[worker.id] = Intent(IntentKind.WARMING, now)
        elif kind is ActionKind.RESUME:
            self.registry.include(worker_id)
            await self._call(lambda: self.provider.resume(worker_id))
            self.intents[worker_id] = Intent(IntentKind.RESUMING, now)
        elif kind is ActionKind.DRAIN:
            self.registry.exclude(worker_id)
            self.intents[worker_id] = Intent(IntentKind.DRAINING, now, to_cold=action.to_cold)
        elif kind is ActionKind.STOP_COLD:
            self.registry.exclude(worker_id)
            await self._retire(worker_id, to_cold=True)
        elif kind is ActionKind.DESTROY:
            self.registry.exclude(worker_id)
            await self._call(lambda: self.provider.destroy(worker_id))
            self.intents.pop(worker_id, None)
            self.registry.remove(worker_id)
        return True

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        """A provider call with a timeout and one retry; ProviderError if both fail."""
        problem: Exception | None = None
        for _ in range(2):
            try:
                async with asyncio.timeout(self.call_timeout_s):
                    return await call()
            except (ProviderError, TimeoutError, OSError) as exc:
                problem = exc
        raise ProviderError(f"provider call failed twice: {problem!r}") from problem

    def _failed(self, exc: ProviderError) -> None:
        self.failures += 1
        self.error = str(exc)
        self.metrics.provider_failures.set(self.failures)
        log.warning("autoscaler: %s (%d in a row)", exc, self.failures)
        if self.failures >= FAILURES_BEFORE_BACKOFF:
            self.backoff_until = self.clock() + BACKOFF_S

    def status(self) -> dict[str, object]:
        """Desired vs actual workers by phase, the cold pool, the provider error, and the
        latest decisions that changed the fleet (however many quiet ticks came since)."""
        obs = self.last_observation
        counts = {phase.value: obs.count(phase) for phase in WorkerPhase} if obs else {}
        latest = self.decisions[-1] if self.decisions else None
        return {
            "policy": self.policy.name,
            "desired_active": latest.desired_active if latest else None,
            "desired_cold": latest.desired_cold if latest else None,
            "workers": counts,
            "cold_pool": obs.cold_pool if obs else 0,
            "error": self.error,
            "decisions": [
                {"at": d.now, "summary": d.summary(), "inputs": d.inputs}
                for d in list(self.changes)[-STATUS_DECISIONS:]
            ],
        }


async def stop_task(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
