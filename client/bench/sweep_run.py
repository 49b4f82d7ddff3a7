"""Driving a sweep: one user for the baseline, then open-loop steps at growing rates until the
policy (`client.bench.sweep`) finds the target overloaded. Each step is a separate run; their
records are moved onto the sweep's clock and labelled with their step as `phase`."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from client.bench.arrivals import Phase
from client.bench.config import BenchConfig
from client.bench.document import shifted, sweep_document
from client.bench.errors import BenchError
from client.bench.execute import RunResult
from client.bench.plan import LoadPlan
from client.bench.records import RequestRecord
from client.bench.stats import Window, summarize
from client.bench.summary import BenchSummary, Figures, SweepStep
from client.bench.sweep import overload_reasons

__all__ = ["run_sweep"]

ExecuteStep = Callable[[LoadPlan, str], Awaitable[RunResult]]


async def run_sweep(
    config: BenchConfig, execute_step: ExecuteStep, t0: float
) -> tuple[BenchSummary, list[RequestRecord]]:
    policy = config.sweep
    baseline_plan = LoadPlan("closed", users=1, seconds=config.seconds, seed=config.seed)
    result = await execute_step(baseline_plan, "sweep step 0 (1 user)")
    records, base = _step_figures(config, result, t0, 0)
    base_rate = base.throughput.requests_per_s
    base_ttft = base.ttft.p50_ms
    if not base_rate or base_ttft is None:
        raise BenchError("the sweep's first step (one user) completed no request in its window")
    steps = [SweepStep(step=0, offered_rate=None, overloaded=[], summary=base)]
    health = list(result.health)
    processes = len(result.health)
    for step in range(1, policy.max_steps + 1):
        rate = policy.rate(base_rate, step)
        phases = (Phase(rate, config.seconds),)
        plan = LoadPlan("open", phases, config.burstiness, seed=config.seed + step)
        result = await execute_step(plan, f"sweep step {step} ({rate:.2f} req/s)")
        step_records, figures = _step_figures(config, result, t0, step)
        records.extend(step_records)
        health.extend(result.health)
        processes = max(processes, len(result.health))
        reasons = overload_reasons(figures, rate, base_ttft, policy)
        steps.append(SweepStep(step=step, offered_rate=rate, overloaded=reasons, summary=figures))
        if reasons:
            break
    return sweep_document(config, baseline_plan, records, health, steps, processes), records


def _step_figures(
    config: BenchConfig, result: RunResult, t0: float, step: int
) -> tuple[list[RequestRecord], Figures]:
    """The step's records on the sweep's clock, and its figures over its own window."""
    offset = result.t0 - t0
    records = [dataclasses.replace(r, phase=step) for r in shifted(result.records, offset)]
    window = Window(offset + config.warmup, offset + config.seconds - config.cooldown)
    return records, summarize(records, window, config.slo)
