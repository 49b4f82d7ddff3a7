"""The thread engine: model work on its own thread, events back on the event loop, cancellation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from tests.unit.tgi_server.conftest import ByteCodec, ScriptedRunner, collect
from tgi_server.engine import thread as thread_engine
from tgi_server.engine.base import ServedModel
from tgi_server.engine.thread import Engine
from tgi_server.errors import BackendError, GenerationError
from tgi_server.generation.events import EngineEvent, FailureEvent, GeneratedToken, TokenEvent
from tgi_server.scheduler.base import Job, SchedulerStats
from tgi_server.scheduler.sequential import SequentialScheduler
from tgi_server.validation import SamplingParams, ValidatedRequest

CODEC = ByteCodec()
MODEL = ServedModel(model_id="scripted", codec=CODEC, device_type="cpu")


def request(max_new_tokens: int) -> ValidatedRequest:
    return ValidatedRequest(
        inputs="Hi",
        input_ids=tuple(CODEC.encode("Hi")),
        sampling=SamplingParams(),
        max_new_tokens=max_new_tokens,
    )


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    scheduler = SequentialScheduler(ScriptedRunner([ord("o"), ord("k")]), CODEC, set())
    started = Engine(scheduler, MODEL)
    await started.start()
    yield started
    await started.stop()


async def test_tokens_arrive_on_the_event_loop_from_the_model_thread(engine: Engine) -> None:
    with engine.submit(request(4)) as handle:
        events = await collect(handle)
    tokens = [event for event in events if isinstance(event, TokenEvent)]
    assert [event.token.text for event in tokens] == ["o", "k", "o", "k"]
    assert tokens[-1].completion is not None
    assert tokens[-1].completion.generated_text == "okok"
    assert engine.running


async def test_concurrent_requests_are_all_served(engine: Engine) -> None:
    handles = [engine.submit(request(3)) for _ in range(5)]
    results = await asyncio.gather(*(collect(handle) for handle in handles))
    assert all(len(events) == 3 for events in results)
    assert engine.stats.completed == 5


async def test_leaving_the_handle_early_cancels_the_job(engine: Engine) -> None:
    with engine.submit(request(100_000)) as handle:
        first = await asyncio.wait_for(handle.next_event(), 5)
    assert isinstance(first, TokenEvent)
    with engine.submit(request(2)) as follower:
        events = await collect(follower)
    assert len(events) == 2
    assert engine.stats.cancelled == 1


async def test_stopping_fails_what_is_still_queued() -> None:
    scheduler = SequentialScheduler(ScriptedRunner([ord("o")]), CODEC, set())
    engine = Engine(scheduler, MODEL)
    await engine.start()
    handle = engine.submit(request(1_000_000))
    await engine.stop()
    events = await collect(handle)
    failure = events[-1]
    assert isinstance(failure, FailureEvent)
    assert "shutting down" in failure.error.message
    assert not engine.running
    with pytest.raises(GenerationError, match="the engine is not running"):
        engine.submit(request(1))


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


class ListSink:
    """An EventSink that records its events and the thread they arrived on."""

    def __init__(self) -> None:
        self.events: list[EngineEvent] = []
        self.threads: set[int] = set()
        self.done = asyncio.Event()

    def put_nowait(self, item: EngineEvent, /) -> None:
        self.events.append(item)
        self.threads.add(threading.get_ident())
        if isinstance(item, FailureEvent) or item.completion is not None:
            self.done.set()


async def test_submit_to_hands_every_event_to_the_sink_on_the_event_loop(engine: Engine) -> None:
    sink = ListSink()
    with engine.submit_to(request(3), sink):
        await asyncio.wait_for(sink.done.wait(), 5)
    texts = [event.token.text for event in sink.events if isinstance(event, TokenEvent)]
    assert texts == ["o", "k", "o"]
    assert sink.threads == {threading.get_ident()}


async def test_a_sink_that_raises_does_not_starve_the_others(engine: Engine) -> None:
    class Broken:
        def put_nowait(self, item: EngineEvent, /) -> None:
            raise RuntimeError("broken sink")

    sink = ListSink()
    with engine.submit_to(request(2), Broken()), engine.submit_to(request(2), sink):
        await asyncio.wait_for(sink.done.wait(), 5)
    assert len(sink.events) == 2


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
