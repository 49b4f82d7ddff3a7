"""The stack's capacity, from the bench's sweep (pure)."""

from __future__ import annotations

from client.bench.summary import BenchSummary

__all__ = ["REFINING_STEPS", "capacity"]

REFINING_STEPS = 3
"""The sweep's steps after its first overload (`bench --sweep-refine`): with rates doubling,
they leave the highest rate kept up within 2 ** (1/8), 9 %, of the lowest overloaded one."""


def capacity(sweep: BenchSummary) -> float:
    """The most successful requests per second a step of the sweep completed while it kept up.

    A step keeps up when it completed what it was offered with few failures and a median TTFT
    within 5x the one-user baseline's (the bench's overload rules): the capacity is the most
    load the stack serves before a queue builds. Not the throughput of an overloaded step:
    that one is higher (a batching backend serves more at larger batches, at several times the
    latency) but depends on how far past the limit the step landed, which moved the figure
    from 116 to 161 req/s between two sweeps of one stack, and a soak at 80 % of it ran the
    two cores at saturation. ValueError for a summary that is not a sweep's or whose steps
    kept up with nothing."""
    if not sweep.sweep:
        raise ValueError("the bench summary holds no sweep")
    kept_up = [step.summary for step in sweep.sweep if not step.overloaded]
    best = max((figures.throughput.requests_per_s for figures in kept_up), default=0.0)
    if best <= 0:
        raise ValueError("no step of the sweep completed a request while it kept up")
    return best
