"""Serverless scenarios as load plans, and the figures only they have. Pure.

scale-from-zero  one request alone (cold: it waits for a worker to start), then open-loop
                 load (warm); reports the cold request's TTFT against warm TTFT
idle-burst       nothing for `idle` seconds, then `rate` for `seconds`
step             a list of rate:seconds steps
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from client.bench.arrivals import Phase
from client.bench.plan import LoadPlan
from client.bench.records import RequestRecord
from client.bench.stats import latency_summary
from client.bench.summary import ColdStart, TimelinePoint, WorkersSeen
from client.bench.timeline import WorkerSample

if TYPE_CHECKING:
    from client.bench.config import BenchConfig

__all__ = ["Scenario", "cold_start_summary", "scenario_plan", "workers_summary"]

Scenario = Literal["scale-from-zero", "idle-burst", "step"]


def scenario_plan(config: BenchConfig) -> LoadPlan:
    """The load plan of `config.scenario`: `config.rate` for `config.seconds` (for idle-burst,
    after `config.idle` seconds of nothing), or `config.steps`."""
    load = Phase(config.rate, config.seconds)
    if config.scenario == "scale-from-zero":
        return LoadPlan("cold", (load,), config.burstiness, seed=config.seed)
    phases = config.steps
    if config.scenario == "idle-burst":
        phases = (Phase(0, config.idle), load)
    return LoadPlan("open", phases, config.burstiness, seed=config.seed)


def cold_start_summary(records: Sequence[RequestRecord]) -> ColdStart:
    """The first request's figures (cold) against those of the requests after it (warm)."""
    cold = [r for r in records if r.phase == 0]
    warm = [r for r in records if r.phase > 0 and r.outcome == "ok" and r.ttft is not None]
    first = cold[0] if cold else None
    return ColdStart(
        cold_outcome=first.outcome if first else None,
        cold_ttft_ms=_ms(first.ttft) if first else None,
        cold_route_ms=_ms(first.route_time) if first else None,
        time_to_first_success_ms=_ms(first.e2e) if first and first.outcome == "ok" else None,
        warm_ttft=latency_summary([r.ttft for r in warm if r.ttft is not None]),
    )


def workers_summary(samples: Sequence[WorkerSample]) -> WorkersSeen:
    """Peak count per state, the first time any worker was ready, and every sample."""
    peaks: dict[str, int] = {}
    first_ready = None
    for sample in samples:
        for state, count in sample.states.items():
            peaks[state] = max(peaks.get(state, 0), count)
        if first_ready is None and sample.states.get("ready", 0) + sample.states.get("busy", 0):
            first_ready = sample.t
    return WorkersSeen(
        samples=len(samples),
        failed_samples=sum(1 for s in samples if not s.ok),
        peak_by_state=dict(sorted(peaks.items())),
        first_ready_s=first_ready,
        timeline=[TimelinePoint(t=round(s.t, 3), states=s.states, ok=s.ok) for s in samples],
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
