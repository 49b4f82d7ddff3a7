"""Driving a sweep: one user for the baseline, then open-loop steps at growing rates until the
policy (`client.bench.sweep`) finds the target overloaded. Each step is a separate run; their
records are moved onto the sweep's clock and labelled with their step as `phase`."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from client.bench.arrivals import Phase
from client.bench.config import BenchConfig
from client.bench.document import shifted, sweep_document
from client.bench.errors import BenchError
from client.bench.execute import RunResult
from client.bench.plan import LoadPlan
from client.bench.records import RequestRecord
from client.bench.selfcheck import ClientHealth
from client.bench.stats import Window, summarize
from client.bench.summary import BenchSummary, Figures, SweepStep
from client.bench.sweep import between, overload_reasons

__all__ = ["run_sweep"]

ExecuteStep = Callable[[LoadPlan, str], Awaitable[RunResult]]


async def run_sweep(
    config: BenchConfig, execute_step: ExecuteStep, t0: float
) -> tuple[BenchSummary, list[RequestRecord]]:
    """Step 0 (one user), steps at growing rates until one overloads the target, then
    `config.sweep.refine` steps between the highest rate kept up and the lowest overloaded."""
    policy = config.sweep
    baseline_plan = LoadPlan("closed", users=1, seconds=config.seconds, seed=config.seed)
    result = await execute_step(baseline_plan, "sweep step 0 (1 user)")
    records, base = _step_figures(config, result, t0, 0)
    base_rate = base.throughput.requests_per_s
    base_ttft = base.ttft.p50_ms
    if not base_rate or base_ttft is None:
        raise BenchError("the sweep's first step (one user) completed no request in its window")
    health = list(result.health)
    steps = _Steps(config, execute_step, t0, base_ttft, records, health, len(health))
    steps.done.append(SweepStep(step=0, offered_rate=None, overloaded=[], summary=base))
    kept_up: float | None = None
    overloaded: float | None = None
    for step in range(1, policy.max_steps + 1):
        rate = policy.rate(base_rate, step)
        if await steps.overload(rate):
            overloaded = rate
            break
        kept_up = rate
    if kept_up is not None and overloaded is not None:
        await _refine(steps, kept_up, overloaded, policy.refine)
    document = sweep_document(
        config, baseline_plan, steps.records, steps.health, steps.done, steps.processes
    )
    return document, steps.records


async def _refine(steps: _Steps, kept_up: float, overloaded: float, count: int) -> None:
    """`count` steps, each at the middle of the interval between the highest rate kept up and
    the lowest overloaded, which it halves."""
    for _ in range(count):
        rate = between(kept_up, overloaded)
        if await steps.overload(rate):
            overloaded = rate
        else:
            kept_up = rate


@dataclass
class _Steps:
    """The steps of a sweep run so far, their records and the client's health over them."""

    config: BenchConfig
    execute_step: ExecuteStep
    t0: float
    base_ttft_ms: float
    records: list[RequestRecord]
    health: list[ClientHealth]
    processes: int
    """The most client processes a step used."""
    done: list[SweepStep] = field(default_factory=list)

    async def overload(self, rate: float) -> list[str]:
        """Run the next step, an open loop at `rate`; why it overloaded the target (empty when
        it kept up)."""
        config, step = self.config, len(self.done)
        phases = (Phase(rate, config.seconds),)
        plan = LoadPlan("open", phases, config.burstiness, seed=config.seed + step)
        result = await self.execute_step(plan, f"sweep step {step} ({rate:.2f} req/s)")
        step_records, figures = _step_figures(config, result, self.t0, step)
        self.records.extend(step_records)
        self.health.extend(result.health)
        self.processes = max(self.processes, len(result.health))
        reasons = overload_reasons(figures, rate, self.base_ttft_ms, config.sweep)
        done = SweepStep(step=step, offered_rate=rate, overloaded=reasons, summary=figures)
        self.done.append(done)
        return reasons


def _step_figures(
    config: BenchConfig, result: RunResult, t0: float, step: int
) -> tuple[list[RequestRecord], Figures]:
    """The step's records on the sweep's clock, and its figures over its own window."""
    offset = result.t0 - t0
    records = [dataclasses.replace(r, phase=step) for r in shifted(result.records, offset)]
    window = Window(offset + config.warmup, offset + config.seconds - config.cooldown)
    return records, summarize(records, window, config.slo)
