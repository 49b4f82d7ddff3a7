"""The stack's capacity, from the bench's sweep (pure)."""

from __future__ import annotations

from client.bench.summary import BenchSummary

__all__ = ["capacity"]


def capacity(sweep: BenchSummary) -> float:
    """The most successful requests per second any step of the sweep completed in its window.

    The sweep doubles its rate until a step overloads the stack; at that step the stack
    completes what it can, its saturated throughput, and at the steps before it what it was
    offered. So the highest throughput of any step is the capacity the bench measured (never
    above what the stack really did). ValueError for a summary that is not a sweep's or whose
    steps completed nothing."""
    if not sweep.sweep:
        raise ValueError("the bench summary holds no sweep")
    best = max(step.summary.throughput.requests_per_s for step in sweep.sweep)
    if best <= 0:
        raise ValueError("no step of the sweep completed a request")
    return best
