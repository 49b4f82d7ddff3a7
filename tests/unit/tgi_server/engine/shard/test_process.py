"""The shard engine's own behaviour over a real socket pair, with a scripted model on a thread:
grammars compiled in the shard, a shard that will not stop or dies. What every engine does is in
../test_model_engine.py."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator

import pytest
import torch

from tests.unit.tgi_server.conftest import collect
from tests.unit.tgi_server.engine.engines import (
    MODEL,
    request,
    scheduler,
    shard_engine,
    start_shard,
)
from tgi_server.engine.shard.engine import ShardEngine
from tgi_server.engine.shard.launch import ShardProcess
from tgi_server.errors import GenerationError
from tgi_server.generation.events import FailureEvent, TokenEvent
from tgi_server.generation.grammar import CompiledGrammar

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


@pytest.fixture
async def engine() -> AsyncIterator[ShardEngine]:
    started = shard_engine("ok", compile_digits)
    await started.start()
    yield started
    await started.stop()


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
    shard, theirs = start_shard(scheduler("o"))
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
