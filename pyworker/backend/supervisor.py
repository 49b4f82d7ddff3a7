"""Backend supervision: from `loading` to `ready`, and out to `error` and back.

Readiness needs both signals this worker can get: the backend answers `/health` with 200, and
its log (`MODEL_LOG`, when set) has not reported a failure since it last said "Connected". A
log line wakes the supervisor at once; otherwise it polls. Before `ready` it reads `/info` and
measures `max_perf` with concurrent requests, unless its benchmark cache (`TGIS_BENCHMARK_CACHE`)
holds the figure of an earlier start of the same backend, model and machine
(`benchmark_cache`): it then goes from `loading` straight to `ready`. An `error` state carries
the message (the log line, or the failing check) and is cleared when the backend is healthy
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable

import aiohttp

from protocol import Info, WorkerState
from pyworker.backend.benchmark_cache import BenchmarkCache, BenchmarkKey
from pyworker.backend.model_log import LogSignal, classify_line
from pyworker.backend.probe import BackendProbe, BackendProbeError
from pyworker.lifecycle import Lifecycle

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)


class Supervisor:
    def __init__(
        self,
        probe: BackendProbe,
        lifecycle: Lifecycle,
        *,
        on_ready: Callable[[Info, float], None],
        health_interval_s: float,
        benchmark_tokens: int,
        benchmark_concurrency: int,
        benchmark_repeats: int = 1,
        benchmark_budget_s: float = math.inf,
        log_lines: AsyncIterator[str] | None = None,
        poll_s: float = 0.05,
        benchmark_cache: BenchmarkCache | None = None,
        machine: str = "",
    ) -> None:
        self._probe = probe
        self._lifecycle = lifecycle
        self._on_ready = on_ready
        self._health_interval_s = health_interval_s
        self._benchmark_tokens = benchmark_tokens
        self._benchmark_concurrency = benchmark_concurrency
        self._benchmark_repeats = benchmark_repeats
        self._benchmark_budget_s = benchmark_budget_s
        self._log_lines = log_lines
        self._poll_s = poll_s
        self._benchmark_cache = benchmark_cache
        self._machine = machine
        self._log_failure: str | None = None
        self._wake = asyncio.Event()

    async def run(self) -> None:
        watcher = asyncio.create_task(self._watch_log()) if self._log_lines else None
        try:
            self._lifecycle.move_to(WorkerState.LOADING)
            while True:
                await self._until_healthy()
                if await self._bring_up():
                    await self._watch()
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    async def _bring_up(self) -> bool:
        lifecycle = self._lifecycle
        try:
            info = await self._probe.info()
            perf = await self._start_up_figure(info)
        except (BackendProbeError, aiohttp.ClientError, TimeoutError) as exc:
            lifecycle.move_to(WorkerState.ERROR, f"backend check failed: {exc}")
            await self._sleep_or_wake(self._health_interval_s)
            return False
        if perf <= 0:
            lifecycle.move_to(WorkerState.ERROR, "backend benchmark generated no tokens")
            return False
        log.info("backend ready: %s, max_perf %.1f tokens/s", info.model_id, perf)
        self._on_ready(info, perf)
        lifecycle.mark_ready(info.max_total_tokens)
        return True

    async def _start_up_figure(self, info: Info) -> float:
        """The figure the cache keeps for this backend, else the benchmark's (then kept)."""
        cache = self._benchmark_cache
        key = BenchmarkKey.of(
            info,
            machine=self._machine,
            tokens=self._benchmark_tokens,
            concurrency=self._benchmark_concurrency,
            repeats=self._benchmark_repeats,
        )
        if cache is not None and (kept := await asyncio.to_thread(cache.get, key)) is not None:
            log.info("start-up figure from the benchmark cache: %.1f tokens/s", kept)
            return kept
        self._lifecycle.move_to(WorkerState.BENCHMARKING)
        perf = await self._probe.measure_tokens_per_second(
            self._benchmark_tokens,
            self._benchmark_concurrency,
            self._benchmark_repeats,
            self._benchmark_budget_s,
        )
        if cache is not None and perf > 0:
            await asyncio.to_thread(cache.put, key, perf)
        return perf

    async def _until_healthy(self) -> None:
        polls = 0
        while self._log_failure is not None or not await self._probe.healthy():
            if polls % 60 == 0 and self._log_failure is None:
                log.info("waiting for the backend to become healthy")
            polls += 1
            await self._sleep_or_wake(self._poll_s)

    async def _watch(self) -> None:
        """Return when the backend stops being healthy (after marking the worker `error`)."""
        while True:
            await self._sleep_or_wake(self._health_interval_s)
            if self._log_failure is not None:
                return  # the log watcher already moved the worker to `error`
            if not await self._probe.healthy():
                self._lifecycle.move_to(WorkerState.ERROR, "backend /health is failing")
                return

    async def _sleep_or_wake(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    async def _watch_log(self) -> None:
        assert self._log_lines is not None
        async for line in self._log_lines:
            event = classify_line(line)
            if event is None:
                continue
            if event.signal is LogSignal.FAILED:
                self._log_failure = event.message
                self._lifecycle.move_to(WorkerState.ERROR, f"backend failed: {event.message}")
            else:
                if self._log_failure is not None:
                    log.info("backend log says it is serving again")
                self._log_failure = None
            self._wake.set()
