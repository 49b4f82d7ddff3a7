"""How many client processes a load needs (`--processes auto`), as pure logic.

One process keeps its p99 timing error within 10 ms up to a few thousand SSE events/s
(benchmarks/bench_accuracy.py measures it: about 8.5k on a quiet core, 2.4k on a busy shared
machine); `EVENTS_PER_PROCESS` sits in between. The expected event rate is
the peak arrival rate times the mean output length for open loops, and the users times
`ASSUMED_TOKENS_PER_S` per stream for closed loops (their rate depends on the server).
"""

from __future__ import annotations

import math

from client.bench.plan import LoadPlan
from client.bench.workload import LengthDist, Workload

__all__ = ["ASSUMED_TOKENS_PER_S", "EVENTS_PER_PROCESS", "auto_processes", "expected_events"]

EVENTS_PER_PROCESS = 4000.0
ASSUMED_TOKENS_PER_S = 50.0


def mean_length(dist: LengthDist) -> float:
    if dist.kind == "fixed":
        return dist.a
    if dist.kind == "uniform":
        return (dist.a + dist.b) / 2
    if dist.kind == "normal":
        return dist.a
    return dist.a * math.exp(dist.b**2 / 2)


def expected_events(plan: LoadPlan, workload: Workload) -> float:
    """Token events per second the plan should bring at its peak."""
    if plan.kind == "closed":
        return plan.users * ASSUMED_TOKENS_PER_S
    if workload.dataset:
        tokens = sum(s.max_new_tokens for s in workload.dataset) / len(workload.dataset)
    else:
        tokens = mean_length(workload.output_len)
    return max((p.rate for p in plan.phases), default=0.0) * tokens


def auto_processes(events_per_s: float, cpus: int) -> int:
    """Enough processes for `events_per_s`, leaving one CPU to the rest of the machine."""
    wanted = math.ceil(events_per_s / EVENTS_PER_PROCESS)
    return max(1, min(wanted, cpus - 1))
