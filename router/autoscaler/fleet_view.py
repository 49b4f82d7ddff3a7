"""The fleet as the policy sees it, from what the provider runs and what workers report.

The provider knows whether a worker runs or is stopped; the router's registry knows whether it
serves; the loop knows what it asked for (warming for the cold pool, resuming, draining).
A worker that has not served within ready_timeout_s of its start counts as failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from router.autoscaler.demand import DemandSignal
from router.autoscaler.observation import Observation, WorkerPhase, WorkerView
from router.autoscaler.params import EndpointParams
from router.providers.base import ProviderState, ProviderWorker
from router.routing.registry import WorkerRecord, WorkerRegistry

__all__ = ["Intent", "IntentKind", "observe", "phase_of"]


class IntentKind(StrEnum):
    WARMING = "warming"
    RESUMING = "resuming"
    DRAINING = "draining"


@dataclass(frozen=True)
class Intent:
    kind: IntentKind
    since: float
    to_cold: bool = False


def phase_of(
    worker: ProviderWorker,
    record: WorkerRecord | None,
    serving: bool,
    intent: Intent | None,
    now: float,
    ready_timeout_s: float,
) -> WorkerPhase:
    if worker.state in (ProviderState.EXITED, ProviderState.ERROR):
        return WorkerPhase.ERROR
    kind = intent.kind if intent else None
    if worker.state is ProviderState.STOPPED:
        return WorkerPhase.RESUMING if kind is IntentKind.RESUMING else WorkerPhase.COLD
    if kind is IntentKind.DRAINING:
        return WorkerPhase.DRAINING
    if kind is IntentKind.WARMING:
        return WorkerPhase.WARMING
    if serving:
        return WorkerPhase.READY
    started = intent.since if kind is IntentKind.RESUMING and intent else worker.since
    if now - started > ready_timeout_s:
        return WorkerPhase.ERROR
    return WorkerPhase.RESUMING if kind is IntentKind.RESUMING else WorkerPhase.LOADING


def observe(
    workers: list[ProviderWorker],
    registry: WorkerRegistry,
    intents: dict[str, Intent],
    demand: DemandSignal,
    params: EndpointParams,
    now: float,
    interval_s: float,
) -> Observation:
    views = []
    for worker in workers:
        record = registry.get(worker.id)
        serving = record is not None and record.state.routable and registry.is_fresh(record, now)
        intent = intents.get(worker.id)
        phase = phase_of(worker, record, serving, intent, now, params.ready_timeout_s)
        views.append(
            WorkerView(
                id=worker.id,
                phase=phase,
                max_perf=record.max_perf if record and serving else 0.0,
                in_flight_tokens=record.expected_load if record else 0.0,
                in_flight_requests=int(record is not None and record.expected_load > 0),
                queue_time_s=record.expected_wait_s if record and serving else 0.0,
                since=worker.since,
                to_cold=intent is not None and intent.to_cold,
            )
        )
    tokens, requests = demand.take_arrivals()
    return Observation(
        now=now,
        workers=tuple(views),
        arrived_tokens=tokens,
        arrived_requests=requests,
        waiting_tokens=demand.waiting_tokens,
        waiting_requests=demand.waiting_requests,
        interval_s=interval_s,
    )
