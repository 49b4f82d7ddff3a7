"""What a simulation measured, as text or as one JSON object."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router.simulator.engine import _Run

__all__ = ["SimResult", "TimelinePoint", "format_result", "percentile", "summarise"]


@dataclass(frozen=True)
class TimelinePoint:
    t: float
    load_tokens_per_s: float
    ready: int
    active: int
    cold: int
    desired: int
    waiting: int


@dataclass(frozen=True)
class SimResult:
    trace: str
    policy: str
    requests: int
    served: int
    slo_attainment: float  # share of all requests that started within target_queue_time
    target_queue_time_s: float
    p50_queue_time_s: float
    p99_queue_time_s: float
    p50_ttft_s: float
    p99_ttft_s: float
    worker_seconds: float  # every phase but cold and failed
    billed_seconds: float  # compute as billed: by spell, each at least the minimum
    storage_seconds: float  # disk-seconds: every phase but failed
    cost: float  # compute and storage at the billing's prices
    duration_s: float
    mean_workers: float
    max_workers_seen: int
    cold_starts: int  # workers created from nothing
    resumes: int  # workers resumed from the cold pool
    flaps: int  # parks undone by a resume, or resumes by a park, too soon (autoscaler.flaps)
    failures: int
    scale_up_lag_mean_s: float  # from a scale-up decision to that worker serving
    scale_up_lag_max_s: float
    decisions: int
    timeline: tuple[TimelinePoint, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["timeline"]
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in data.items()}


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted `values` (0.0 when empty)."""
    if not values:
        return 0.0
    return values[min(len(values) - 1, max(0, math.ceil(share * len(values)) - 1))]


def summarise(run: _Run, end: float) -> SimResult:
    queue = sorted(q for q in run.queue_s if q >= 0)
    ttft = sorted(t for t in run.ttft_s if t >= 0)
    target = run.policy.params.target_queue_time
    within = sum(1 for q in queue if q <= target)
    lags = run.fleet.scale_up_lags
    worker_seconds = run.fleet.billed_seconds(end)
    invoice = run.config.billing.invoice(run.fleet.spells(end), run.fleet.stored_seconds(end))
    requests = len(run.trace)
    return SimResult(
        trace=run.trace.name,
        policy=run.policy.name,
        requests=requests,
        served=len(queue),
        slo_attainment=within / requests if requests else 1.0,
        target_queue_time_s=target,
        p50_queue_time_s=percentile(queue, 0.5),
        p99_queue_time_s=percentile(queue, 0.99),
        p50_ttft_s=percentile(ttft, 0.5),
        p99_ttft_s=percentile(ttft, 0.99),
        worker_seconds=worker_seconds,
        billed_seconds=invoice.billed_s,
        storage_seconds=invoice.storage_s,
        cost=invoice.cost,
        duration_s=end,
        mean_workers=worker_seconds / end if end > 0 else 0.0,
        max_workers_seen=max((p.active for p in run.timeline), default=0),
        cold_starts=run.fleet.cold_starts,
        resumes=run.fleet.resumes,
        flaps=run.flaps.count,
        failures=run.fleet.failures,
        scale_up_lag_mean_s=sum(lags) / len(lags) if lags else 0.0,
        scale_up_lag_max_s=max(lags, default=0.0),
        decisions=run.decisions,
        timeline=tuple(run.timeline),
    )


def format_result(result: SimResult) -> str:
    lines = [
        f"trace {result.trace!r}, policy {result.policy!r}",
        f"  requests          {result.requests} ({result.served} served)",
        f"  SLO attainment    {result.slo_attainment:.2%} "
        f"(queue time <= {result.target_queue_time_s:g} s)",
        f"  queue time        p50 {result.p50_queue_time_s:.3f} s, "
        f"p99 {result.p99_queue_time_s:.3f} s",
        f"  time to 1st token p50 {result.p50_ttft_s:.3f} s, p99 {result.p99_ttft_s:.3f} s",
        f"  worker-seconds    {result.worker_seconds:.0f} "
        f"(mean {result.mean_workers:.2f} workers over {result.duration_s:.0f} s, "
        f"peak {result.max_workers_seen} active)",
        f"  scale-up lag      mean {result.scale_up_lag_mean_s:.1f} s, "
        f"max {result.scale_up_lag_max_s:.1f} s (decision to serving)",
        f"  starts            {result.cold_starts} (resumes from cold {result.resumes}, "
        f"failed starts {result.failures}, flaps {result.flaps})",
        f"  cost              {result.cost:.2f} ({result.billed_seconds:.0f} s of compute "
        f"billed, {result.storage_seconds:.0f} disk-seconds)",
    ]
    return "\n".join(lines)
