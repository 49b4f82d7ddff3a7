"""A worker started again takes the start-up figure kept by an earlier start of the same
backend, model and machine, and goes from `loading` to `ready` without benchmarking."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from protocol import Info, WorkerState
from pyworker.backend.benchmark_cache import BenchmarkCache, BenchmarkKey
from pyworker.backend.probe import BackendProbe
from pyworker.backend.supervisor import Supervisor
from pyworker.lifecycle import Lifecycle
from tests.fakes.fake_tgi import FAKE_INFO, FakeTGI

KEY = BenchmarkKey.of(
    Info.model_validate(FAKE_INFO), machine="host-a", tokens=3, concurrency=2, repeats=1
)


async def bring_up(
    url: str, cache: BenchmarkCache | None, machine: str = "host-a"
) -> tuple[float, list[WorkerState]]:
    """Supervise the backend at `url` until the worker is ready: its start-up figure, and
    the states it went through."""
    lifecycle = Lifecycle(clock=lambda: 0.0)
    figures: list[float] = []
    async with aiohttp.ClientSession() as session:
        supervisor = Supervisor(
            BackendProbe(session, url),
            lifecycle,
            on_ready=lambda info, perf: figures.append(perf),
            health_interval_s=5.0,
            benchmark_tokens=3,
            benchmark_concurrency=2,
            benchmark_repeats=1,
            benchmark_cache=cache,
            machine=machine,
        )
        states: list[WorkerState] = []
        running = asyncio.create_task(supervisor.run())
        try:
            async with asyncio.timeout(10):
                while lifecycle.state is not WorkerState.READY:
                    await lifecycle.changed.wait()
                    lifecycle.changed.clear()
                    states.append(lifecycle.state)
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
    return figures[0], states


async def test_a_second_start_takes_the_kept_figure_and_skips_the_benchmark(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    backend = FakeTGI()
    server: TestServer = await aiohttp_server(backend.app())
    url = str(server.make_url(""))
    cache = BenchmarkCache(tmp_path / "figures" / "benchmarks.json")

    first, first_states = await bring_up(url, cache)
    benchmark_requests = len(backend.payloads("/generate"))
    second, second_states = await bring_up(url, cache)

    assert benchmark_requests > 0
    assert WorkerState.BENCHMARKING in first_states
    assert second == first > 0
    assert len(backend.payloads("/generate")) == benchmark_requests  # none more
    assert second_states == [WorkerState.LOADING, WorkerState.READY]


async def test_another_machine_or_no_cache_benchmarks_again(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    backend = FakeTGI()
    server: TestServer = await aiohttp_server(backend.app())
    url = str(server.make_url(""))
    cache = BenchmarkCache(tmp_path / "benchmarks.json")

    await bring_up(url, cache, machine="host-a")
    after_first = len(backend.payloads("/generate"))
    _, elsewhere = await bring_up(url, cache, machine="host-b threads=4")
    after_second = len(backend.payloads("/generate"))
    _, uncached = await bring_up(url, None)

    assert WorkerState.BENCHMARKING in elsewhere
    assert after_second > after_first
    assert WorkerState.BENCHMARKING in uncached
    assert len(backend.payloads("/generate")) > after_second


def test_the_cache_survives_a_damaged_file_and_ignores_unusable_figures(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.json"
    path.write_text("{not json")
    cache = BenchmarkCache(path)
    assert cache.get(KEY) is None
    cache.put(KEY, 123.5)  # repairs the file
    assert BenchmarkCache(path).get(KEY) == 123.5
    assert [p.name for p in tmp_path.iterdir()] == ["benchmarks.json"]  # no temporary left
    for unusable in (-1, 0, "fast", None):
        path.write_text(json.dumps({KEY.text: unusable}))
        assert cache.get(KEY) is None


def test_a_cache_that_cannot_be_written_does_not_stop_the_worker(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    cache = BenchmarkCache(blocked / "benchmarks.json")  # its folder cannot be made
    cache.put(KEY, 10.0)
    assert cache.get(KEY) is None
