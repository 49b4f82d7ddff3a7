"""Running a LoadPlan: in this process, or split across several client processes that share the
monotonic clock (on Linux `time.perf_counter` is system-wide), so their records merge onto one
timeline. Children report progress and, at the end, their records over a queue."""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from client.bench.errors import BenchError, TargetDown
from client.bench.loop import run_fast
from client.bench.plan import LoadPlan
from client.bench.progress import Progress
from client.bench.records import RequestRecord
from client.bench.runner import Runner, RunnerSettings
from client.bench.selfcheck import ClientHealth
from client.bench.targets import TargetSettings, make_target
from client.bench.workload import Workload

__all__ = ["RunResult", "execute"]

ProgressCallback = Callable[[Progress], None]
_SPAWN_LEAD_S = 2.0
_PROGRESS_EVERY_S = 0.5


@dataclass
class RunResult:
    records: list[RequestRecord]
    health: list[ClientHealth]
    t0: float
    """`time.perf_counter()` at the run's clock zero."""


@dataclass(frozen=True)
class _Job:
    plan: LoadPlan
    target: TargetSettings
    workload: Workload
    runner: RunnerSettings
    t0: float


async def execute(
    plan: LoadPlan,
    target: TargetSettings,
    workload: Workload,
    runner: RunnerSettings,
    *,
    processes: int = 1,
    on_progress: ProgressCallback | None = None,
) -> RunResult:
    if processes == 1:
        job = _Job(plan, target, workload, runner, time.perf_counter())
        return await _run_job(job, on_progress)
    return await _run_in_processes(plan, target, workload, runner, processes, on_progress)


async def _run_job(job: _Job, on_progress: ProgressCallback | None) -> RunResult:
    rng = random.Random(job.plan.seed)
    async with Runner(make_target(job.target), job.workload, rng, job.runner, job.t0) as runner:
        reporter = asyncio.create_task(_report(runner, on_progress)) if on_progress else None
        try:
            await runner.wait_until(0.0)
            await _drive(runner, job.plan, rng)
        finally:
            if reporter is not None:
                reporter.cancel()
                await asyncio.gather(reporter, return_exceptions=True)
        health = await runner.health()
    return RunResult(runner.records, [health], job.t0)


async def _drive(runner: Runner, plan: LoadPlan, rng: random.Random) -> None:
    if plan.kind == "closed":
        await runner.closed_loop(plan.users, plan.seconds, ramp_s=plan.ramp)
    elif plan.kind == "open":
        await _open_phases(runner, plan, plan.offsets(rng), start=0.0)
    else:
        runner.spawn(0.0, phase=0)
        await runner.wait_all()
        await _open_phases(runner, plan, plan.offsets(rng), start=runner.clock(), first_phase=1)


async def _open_phases(
    runner: Runner, plan: LoadPlan, offsets: list[float], start: float, first_phase: int = 0
) -> None:
    windows = plan.phase_windows()
    for number, (begin, end) in enumerate(windows):
        mine = [start + t for t in offsets if begin <= t < end]
        await runner.dispatch(mine, first_phase + number)
    await runner.drain()


async def _report(runner: Runner, on_progress: ProgressCallback) -> None:
    while True:
        on_progress(runner.progress)
        await asyncio.sleep(_PROGRESS_EVERY_S)


async def _run_in_processes(
    plan: LoadPlan,
    target: TargetSettings,
    workload: Workload,
    runner: RunnerSettings,
    processes: int,
    on_progress: ProgressCallback | None,
) -> RunResult:
    t0 = time.perf_counter() + _SPAWN_LEAD_S
    jobs = []
    for index in range(processes):
        shard_runner = RunnerSettings(runner.request_timeout, runner.drain_s, shard=index)
        shard_work = workload.shard(index, processes)
        jobs.append(_Job(plan.shard(index, processes), target, shard_work, shard_runner, t0))
    messages, children = await asyncio.to_thread(_spawn, jobs)
    try:
        return await _collect(messages, children, t0, on_progress)
    finally:
        await asyncio.to_thread(_reap, children)


def _spawn(jobs: list[_Job]) -> tuple[multiprocessing.Queue[tuple[str, int, Any]], list[Any]]:
    """Blocking (pipes, the resource tracker): start one client process per job, all reporting
    to one queue."""
    context = multiprocessing.get_context("spawn")
    messages: multiprocessing.Queue[tuple[str, int, Any]] = context.Queue()
    children = []
    try:
        for job in jobs:
            child = context.Process(target=_child_main, args=(job, messages), daemon=True)
            child.start()
            children.append(child)
    except BaseException:
        _reap(children)
        raise
    return messages, children


def _reap(children: list[Any]) -> None:
    """Blocking: wait a little for each started child, then terminate the ones still running."""
    for child in children:
        child.join(timeout=5)
        if child.is_alive():
            child.terminate()


async def _collect(
    messages: multiprocessing.Queue[tuple[str, int, Any]],
    children: list[Any],
    t0: float,
    on_progress: ProgressCallback | None,
) -> RunResult:
    progress: dict[int, dict[str, Any]] = {}
    results: dict[int, tuple[list[RequestRecord], ClientHealth]] = {}
    while len(results) < len(children):
        try:
            kind, shard, payload = await asyncio.to_thread(messages.get, True, 0.5)
        except queue.Empty:
            if not any(child.is_alive() for child in children) and messages.empty():
                raise BenchError("a client process died without reporting") from None
            continue
        if kind == "progress":
            progress[shard] = payload
            if on_progress is not None:
                on_progress(Progress.merged(list(progress.values())))
        elif kind == "error":
            if payload.startswith("target: "):
                raise TargetDown(payload.removeprefix("target: "))
            raise BenchError(payload)
        else:
            records = [RequestRecord.from_json(r) for r in payload["records"]]
            results[shard] = (records, ClientHealth(**payload["health"]))
    merged = [r for shard in sorted(results) for r in results[shard][0]]
    merged.sort(key=lambda r: r.intended)
    return RunResult(merged, [results[s][1] for s in sorted(results)], t0)


def _child_main(job: _Job, messages: multiprocessing.Queue[tuple[str, int, Any]]) -> None:
    shard = job.runner.shard

    def push(progress: Progress) -> None:
        messages.put(("progress", shard, progress.to_json()))

    try:
        result = run_fast(_run_job(job, push))
    except TargetDown as exc:
        messages.put(("error", shard, f"target: {exc}"))
        return
    except BenchError as exc:
        messages.put(("error", shard, str(exc)))
        return
    except Exception as exc:  # noqa: BLE001 - a child reports any failure instead of dying mutely
        messages.put(("error", shard, f"client process {shard} failed: {exc!r}"))
        return
    health = result.health[0]
    payload = {
        "records": [r.to_json() for r in result.records],
        "health": {
            "lag_p50_s": health.lag_p50_s,
            "lag_p99_s": health.lag_p99_s,
            "lag_max_s": health.lag_max_s,
            "cpu_share": health.cpu_share,
            "preempted_per_s": health.preempted_per_s,
        },
    }
    messages.put(("done", shard, payload))
