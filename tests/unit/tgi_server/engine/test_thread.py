"""The thread engine's own behaviour: a scheduler bug fails its requests, not the engine, and
each step waits for the event loop to take the previous step's tokens. What every engine does
is in test_model_engine.py."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.unit.tgi_server.conftest import collect
from tests.unit.tgi_server.engine.engines import MODEL, ListSink, request
from tgi_server.engine import thread as thread_engine
from tgi_server.engine.thread import Engine
from tgi_server.errors import BackendError
from tgi_server.generation.events import FailureEvent, GeneratedToken, TokenEvent
from tgi_server.scheduler.base import Job, SchedulerStats


class ExplodingScheduler:
    """A scheduler with a bug: its first step raises."""

    def __init__(self) -> None:
        self.stats = SchedulerStats()
        self.jobs: list[Job] = []
        self.exploded = threading.Event()

    def add(self, job: Job) -> None:
        self.jobs.append(job)

    def has_work(self) -> bool:
        return bool(self.jobs)

    def step(self) -> None:
        self.exploded.set()
        raise ValueError("scheduler bug")

    def abort_all(self, error: BackendError) -> None:
        for job in self.jobs:
            job.emit(FailureEvent(error))
        self.jobs.clear()


async def test_a_scheduler_bug_fails_its_requests_but_keeps_the_engine_alive() -> None:
    engine = Engine(ExplodingScheduler(), MODEL)
    await engine.start()
    try:
        with engine.submit(request(1)) as handle:
            events = await collect(handle)
        assert isinstance(events[-1], FailureEvent)
        assert events[-1].error.status == 424
        assert engine.running
    finally:
        await engine.stop()


class CountingScheduler:
    """Emits one token per step; records how many earlier tokens had reached the loop."""

    def __init__(self, sink: ListSink, steps: int) -> None:
        self.stats = SchedulerStats()
        self._sink = sink
        self._job: Job | None = None
        self._left = steps
        self.delivered_before_step: list[int] = []

    def add(self, job: Job) -> None:
        self._job = job

    def has_work(self) -> bool:
        return self._job is not None and self._left > 0

    def step(self) -> None:
        assert self._job is not None
        self.delivered_before_step.append(len(self._sink.events))
        self._left -= 1
        token = GeneratedToken(id=1, text="a", logprob=0.0, special=False)
        self._job.emit(TokenEvent(index=len(self.delivered_before_step), token=token))

    def abort_all(self, error: BackendError) -> None:
        self._job = None


async def test_each_step_waits_for_the_loop_to_take_the_previous_steps_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(thread_engine, "HANDOFF_WAIT_S", 10.0)  # never time out here
    sink = ListSink()
    scheduler = CountingScheduler(sink, steps=5)
    started = Engine(scheduler, MODEL)
    await started.start()
    try:
        with started.submit_to(request(5), sink):
            for _ in range(500):
                if len(sink.events) == 5:
                    break
                await asyncio.sleep(0.01)
    finally:
        await started.stop()
    assert scheduler.delivered_before_step == [0, 1, 2, 3, 4]
