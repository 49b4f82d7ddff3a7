"""One bench run from a BenchConfig: the probe, the load (a plan, a sweep or a scenario), and the
router's workers sampled alongside; the summary document comes from `client.bench.document`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import aiohttp

from client.bench.arrivals import Phase
from client.bench.config import BenchConfig
from client.bench.document import build_document, measurement_window, phase_summaries, shifted
from client.bench.execute import RunResult, execute
from client.bench.live import LiveView
from client.bench.plan import LoadPlan
from client.bench.records import RequestRecord
from client.bench.runner import RunnerSettings
from client.bench.scenarios import cold_start_summary, scenario_plan, workers_summary
from client.bench.sizing import auto_processes, expected_events
from client.bench.summary import BenchSummary
from client.bench.sweep_run import run_sweep
from client.bench.targets import make_target
from client.bench.timeline import StatusSampler, WorkerSample

__all__ = ["BenchOutcome", "run_bench"]


@dataclass
class BenchOutcome:
    summary: BenchSummary
    records: list[RequestRecord]
    workers: list[WorkerSample]


async def run_bench(config: BenchConfig, live: LiveView) -> BenchOutcome:
    await _probe(config)
    t0 = time.perf_counter()
    sampler = _sampler(config, t0)
    if sampler is None:
        document, records = await _load(config, live, t0)
        workers: list[WorkerSample] = []
    else:
        async with sampler:
            document, records = await _load(config, live, t0)
        workers = sampler.samples
        document = document.with_workers(workers_summary(workers))
    return BenchOutcome(document, records, workers)


async def _probe(config: BenchConfig) -> None:
    async with aiohttp.ClientSession() as session:
        target = make_target(config.target)
        try:
            await target.probe(session)
        finally:
            await target.close()


def _sampler(config: BenchConfig, t0: float) -> StatusSampler | None:
    if not config.sample_status or config.target.kind not in ("router", "worker"):
        return None
    target = config.target
    return StatusSampler(
        target.url, target.endpoint, t0, config.status_interval, admin_key=target.admin_key
    )


async def _load(
    config: BenchConfig, live: LiveView, t0: float
) -> tuple[BenchSummary, list[RequestRecord]]:
    if config.mode == "sweep":

        async def step(plan: LoadPlan, label: str) -> RunResult:
            return await _execute(config, plan, live, label)

        return await run_sweep(config, step, t0)
    plan = _plan(config)
    result = await _execute(config, plan, live, "load")
    offset = result.t0 - t0
    records = shifted(result.records, offset)
    window = measurement_window(config, plan, records, offset)
    phases = phase_summaries(config, plan, records, offset) if plan.kind != "closed" else None
    scenario = cold_start_summary(records) if plan.kind == "cold" else None
    document = build_document(
        config, plan, records, result.health, window, phases=phases, scenario=scenario
    )
    return document, records


def _plan(config: BenchConfig) -> LoadPlan:
    if config.mode == "concurrency":
        return LoadPlan(
            "closed",
            users=config.concurrency,
            seconds=config.seconds,
            seed=config.seed,
            ramp=config.ramp,
        )
    if config.mode == "rate":
        phases = (Phase(config.rate, config.seconds),)
        return LoadPlan("open", phases, config.burstiness, seed=config.seed)
    if config.trace is not None:
        mean_rate = len(config.trace.arrivals) / config.seconds
        phases = (Phase(mean_rate, config.seconds),)
        return LoadPlan("open", phases, seed=config.seed, arrivals=config.trace.arrivals)
    return scenario_plan(config)


def _processes(config: BenchConfig, plan: LoadPlan) -> int:
    if plan.kind == "cold":
        return 1  # the cold request must be alone
    if config.processes > 0:
        return config.processes
    return auto_processes(expected_events(plan, config.workload), os.cpu_count() or 1)


async def _execute(config: BenchConfig, plan: LoadPlan, live: LiveView, label: str) -> RunResult:
    live.start(label, plan.duration)
    try:
        return await execute(
            plan,
            config.target,
            config.workload,
            RunnerSettings(config.request_timeout, config.drain),
            processes=_processes(config, plan),
            on_progress=live.update,
        )
    finally:
        live.finish()
