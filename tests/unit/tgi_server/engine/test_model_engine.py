"""The engine contract (`tgi_server.engine.base.ModelEngine`), held by both engines: the thread
engine, and the shard engine over a real socket pair. What only one of them does is tested in
its own file (test_thread.py, shard/test_process.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import pytest

from tests.unit.tgi_server.conftest import collect
from tests.unit.tgi_server.engine.engines import ListSink, request, shard_engine, thread_engine
from tgi_server.engine.shard.engine import ShardEngine
from tgi_server.engine.thread import Engine
from tgi_server.errors import GenerationError
from tgi_server.generation.events import EngineEvent, FailureEvent, TokenEvent

AnyEngine = Engine | ShardEngine
ENGINES: dict[str, Callable[[str], AnyEngine]] = {"thread": thread_engine, "shard": shard_engine}


@pytest.fixture(params=sorted(ENGINES))
def kind(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def engine(kind: str) -> AsyncIterator[AnyEngine]:
    """A started engine of `kind` whose model writes "ok" over and over."""
    started = ENGINES[kind]("ok")
    await started.start()
    yield started
    await started.stop()


async def test_tokens_arrive_on_the_event_loop(engine: AnyEngine) -> None:
    with engine.submit(request(4)) as handle:
        events = await collect(handle)
    tokens = [event for event in events if isinstance(event, TokenEvent)]
    assert [event.token.text for event in tokens] == ["o", "k", "o", "k"]
    assert [event.index for event in tokens] == [1, 2, 3, 4]
    assert tokens[-1].completion is not None
    assert tokens[-1].completion.generated_text == "okok"
    assert engine.running
    assert engine.stats.completed == 1  # the counters are current with the last token


async def test_concurrent_requests_are_all_served(engine: AnyEngine) -> None:
    handles = [engine.submit(request(3)) for _ in range(5)]
    results = await asyncio.gather(*(collect(handle) for handle in handles))
    assert [len(events) for events in results] == [3] * 5
    assert engine.stats.completed == 5


async def test_leaving_the_handle_early_cancels_the_job(engine: AnyEngine) -> None:
    with engine.submit(request(100_000)) as handle:
        first = await asyncio.wait_for(handle.next_event(), 5)
    assert isinstance(first, TokenEvent)
    with engine.submit(request(2)) as follower:
        assert len(await collect(follower)) == 2
    assert engine.stats.cancelled == 1


async def test_submit_to_hands_every_event_to_the_sink_on_the_event_loop(engine: AnyEngine) -> None:
    sink = ListSink()
    with engine.submit_to(request(3), sink):
        await asyncio.wait_for(sink.done.wait(), 5)
    texts = [event.token.text for event in sink.events if isinstance(event, TokenEvent)]
    assert texts == ["o", "k", "o"]
    assert sink.threads == {threading.get_ident()}


async def test_a_sink_that_raises_does_not_starve_the_others(engine: AnyEngine) -> None:
    class Broken:
        def put_nowait(self, item: EngineEvent, /) -> None:
            raise RuntimeError("broken sink")

    sink = ListSink()
    with engine.submit_to(request(2), Broken()), engine.submit_to(request(2), sink):
        await asyncio.wait_for(sink.done.wait(), 5)
    assert len(sink.events) == 2


async def test_stopping_fails_what_is_running_or_queued(kind: str) -> None:
    engine = ENGINES[kind]("o")
    await engine.start()
    running = engine.submit(request(1_000_000))
    queued = engine.submit(request(1_000_000))
    await asyncio.wait_for(running.next_event(), 5)
    await engine.stop()
    for handle in (running, queued):
        failure = (await collect(handle))[-1]
        assert isinstance(failure, FailureEvent)
        assert "shutting down" in failure.error.message
    assert not engine.running
    if isinstance(engine, ShardEngine):
        assert not engine.failed.is_set()  # a stop is not a failure of the model server
    with pytest.raises(GenerationError, match="the engine is not running"):
        engine.submit(request(1))
