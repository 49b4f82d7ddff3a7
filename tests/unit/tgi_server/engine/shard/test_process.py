"""The shard and its engine over a real socket pair, with a scripted model on a thread."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator

import pytest
import torch

from tests.unit.tgi_server.conftest import ByteCodec, ScriptedRunner, collect
from tgi_server.engine.base import ServedModel
from tgi_server.engine.shard.engine import ShardEngine
from tgi_server.engine.shard.launch import ShardProcess
from tgi_server.engine.shard.process import ShardLoop
from tgi_server.errors import GenerationError
from tgi_server.generation.events import FailureEvent, TokenEvent
from tgi_server.generation.grammar import CompiledGrammar
from tgi_server.scheduler.base import Scheduler
from tgi_server.scheduler.sequential import SequentialScheduler
from tgi_server.validation import SamplingParams, ValidatedRequest

CODEC = ByteCodec()
MODEL = ServedModel(model_id="scripted", codec=CODEC, device_type="cpu")


def request(max_new_tokens: int, grammar: object = None) -> ValidatedRequest:
    return ValidatedRequest(
        inputs="Hi",
        input_ids=tuple(CODEC.encode("Hi")),
        sampling=SamplingParams(),
        max_new_tokens=max_new_tokens,
        grammar=grammar,
    )


class ThreadProcess:
    """A shard loop on a thread, standing in for the shard's process."""

    def __init__(self, loop: ShardLoop) -> None:
        self.thread = threading.Thread(target=loop.run, daemon=True)
        self.thread.start()

    @property
    def pid(self) -> int:
        return 0  # no process of its own

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def kill(self) -> None:
        raise AssertionError("the shard should have stopped when told to")


SLOW_GRAMMAR_MAY_FINISH = threading.Event()
"""Holds the compilation of the regex "slow" until a test sets it."""


def compile_digits(regex: str) -> CompiledGrammar:
    if regex == "slow":
        SLOW_GRAMMAR_MAY_FINISH.wait(10)
        regex = "[0-9]+"
    if regex != "[0-9]+":
        raise GenerationError(f"cannot compile {regex}")
    return CompiledGrammar(object(), regex, 0)


class AnyToken:
    """Stands in for a grammar's token constraint: every token may come next."""

    def __init__(self, grammar: CompiledGrammar) -> None:
        self.grammar = grammar

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        return logits

    def advance(self, token_id: int) -> None:
        pass


def start_shard(scheduler: Scheduler) -> tuple[ShardProcess, socket.socket]:
    ours, theirs = socket.socketpair()
    loop = ShardLoop(theirs, scheduler, compile_digits)
    return ShardProcess(ThreadProcess(loop), ours, "cpu", None), theirs


@pytest.fixture
async def engine() -> AsyncIterator[ShardEngine]:
    scheduler = SequentialScheduler(ScriptedRunner([ord("o"), ord("k")]), CODEC, set())
    shard, _ = start_shard(scheduler)
    started = ShardEngine(shard, MODEL)
    await started.start()
    yield started
    await started.stop()


async def test_tokens_come_back_from_the_shard(engine: ShardEngine) -> None:
    with engine.submit(request(4)) as handle:
        events = await collect(handle)
    tokens = [event for event in events if isinstance(event, TokenEvent)]
    assert [event.token.text for event in tokens] == ["o", "k", "o", "k"]
    assert [event.index for event in tokens] == [1, 2, 3, 4]
    assert tokens[-1].completion is not None
    assert tokens[-1].completion.generated_text == "okok"
    assert engine.running
    assert engine.stats.completed == 1  # the counters came with the last token


async def test_concurrent_requests_are_all_served(engine: ShardEngine) -> None:
    handles = [engine.submit(request(3)) for _ in range(5)]
    results = await asyncio.gather(*(collect(handle) for handle in handles))
    assert [len(events) for events in results] == [3] * 5
    assert engine.stats.completed == 5


async def test_leaving_the_handle_early_cancels_the_job_in_the_shard(
    engine: ShardEngine,
) -> None:
    with engine.submit(request(100_000)) as handle:
        first = await asyncio.wait_for(handle.next_event(), 5)
    assert isinstance(first, TokenEvent)
    with engine.submit(request(2)) as follower:
        assert len(await collect(follower)) == 2
    assert engine.stats.cancelled == 1


async def test_a_grammar_goes_by_its_regex_and_is_compiled_in_the_shard(
    engine: ShardEngine,
) -> None:
    broken = CompiledGrammar(object(), "(", 0)
    with engine.submit(request(2, grammar=broken)) as handle:
        events = await collect(handle)
    assert isinstance(events[-1], FailureEvent)
    assert events[-1].error.message == "Request failed during generation: cannot compile ("


async def test_a_grammar_compiles_on_a_thread_while_other_requests_go_on(
    engine: ShardEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tgi_server.generation.sequence.TokenConstraint", AnyToken)
    SLOW_GRAMMAR_MAY_FINISH.clear()
    with engine.submit(request(2, grammar=CompiledGrammar(object(), "slow", 0))) as slow:
        with engine.submit(request(3)) as plain:  # served while "slow" still compiles
            assert len(await collect(plain)) == 3
        SLOW_GRAMMAR_MAY_FINISH.set()
        events = await collect(slow)
    assert [e.token.text for e in events if isinstance(e, TokenEvent)] == ["o", "k"]


async def test_stopping_fails_what_the_shard_still_has() -> None:
    scheduler = SequentialScheduler(ScriptedRunner([ord("o")]), CODEC, set())
    shard, _ = start_shard(scheduler)
    engine = ShardEngine(shard, MODEL)
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
    assert not engine.failed.is_set()
    with pytest.raises(GenerationError, match="the engine is not running"):
        engine.submit(request(1))


class StuckProcess:
    """A shard process that does not stop when told to, until it is killed."""

    def __init__(self) -> None:
        self.killed = threading.Event()

    @property
    def pid(self) -> int:
        return 0

    def join(self, timeout: float | None = None) -> None:
        self.killed.wait(timeout)

    def is_alive(self) -> bool:
        return not self.killed.is_set()

    def kill(self) -> None:
        self.killed.set()


async def test_a_shard_that_does_not_stop_is_killed_and_its_requests_fail() -> None:
    ours, theirs = socket.socketpair()  # nobody reads `theirs`: the shard is stuck
    process = StuckProcess()
    engine = ShardEngine(ShardProcess(process, ours, "cpu", None), MODEL, stop_timeout_s=0.1)
    await engine.start()
    handle = engine.submit(request(5))
    await asyncio.wait_for(engine.stop(), 5)
    assert process.killed.is_set()
    failure = (await collect(handle))[-1]
    assert isinstance(failure, FailureEvent)
    assert "shutting down" in failure.error.message
    theirs.close()


async def test_a_shard_that_dies_fails_its_requests_and_marks_the_engine_failed() -> None:
    scheduler = SequentialScheduler(ScriptedRunner([ord("o")]), CODEC, set())
    shard, theirs = start_shard(scheduler)
    engine = ShardEngine(shard, MODEL)
    await engine.start()
    handle = engine.submit(request(1_000_000))
    await asyncio.wait_for(handle.next_event(), 5)
    theirs.shutdown(socket.SHUT_RDWR)  # as when the shard's process is killed
    failure = (await collect(handle))[-1]
    assert isinstance(failure, FailureEvent)
    assert failure.error.message.endswith("Server error: the model server exited")
    await asyncio.wait_for(engine.failed.wait(), 5)
    assert not engine.running
    await engine.stop()
