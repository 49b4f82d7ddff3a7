"""The background event loop behind the synchronous Client."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncGenerator

import pytest

from client._loop_thread import LoopThread


async def current_thread_name() -> str:
    await asyncio.sleep(0)
    return threading.current_thread().name


async def count_to(n: int, closed: list[bool]) -> AsyncGenerator[int, None]:
    try:
        for i in range(n):
            await asyncio.sleep(0)
            yield i
    finally:
        closed.append(True)


@pytest.fixture
def loop_thread() -> LoopThread:
    return LoopThread(name="test-loop")


def test_run_executes_on_the_background_thread(loop_thread: LoopThread) -> None:
    try:
        assert loop_thread.run(current_thread_name()) == "test-loop"
    finally:
        loop_thread.stop()


def test_the_thread_starts_on_first_use_and_stop_joins_it(loop_thread: LoopThread) -> None:
    assert not loop_thread.running
    before = threading.active_count()
    loop_thread.run(current_thread_name())
    assert loop_thread.running
    loop_thread.stop()
    loop_thread.stop()
    assert not loop_thread.running
    assert threading.active_count() == before


def test_exceptions_cross_the_thread_unchanged(loop_thread: LoopThread) -> None:
    async def fail() -> None:
        raise KeyError("boom")

    try:
        with pytest.raises(KeyError, match="boom"):
            loop_thread.run(fail())
    finally:
        loop_thread.stop()


def test_iterate_yields_everything_then_closes(loop_thread: LoopThread) -> None:
    closed: list[bool] = []
    try:
        assert list(loop_thread.iterate(count_to(3, closed))) == [0, 1, 2]
        assert closed == [True]
    finally:
        loop_thread.stop()


def test_leaving_an_iteration_early_closes_the_generator(loop_thread: LoopThread) -> None:
    closed: list[bool] = []
    try:
        iterator = loop_thread.iterate(count_to(10, closed))
        assert next(iterator) == 0
        iterator.close()
        assert closed == [True]
    finally:
        loop_thread.stop()


def test_stop_closes_a_generator_left_open(loop_thread: LoopThread) -> None:
    closed: list[bool] = []
    iterator = loop_thread.iterate(count_to(10, closed))
    assert next(iterator) == 0
    loop_thread.stop()
    assert closed == [True]
    iterator.close()


def test_a_stopped_loop_refuses_work_and_does_not_leak_the_coroutine(
    loop_thread: LoopThread,
) -> None:
    loop_thread.stop()
    coro = current_thread_name()
    with pytest.raises(RuntimeError, match="this client is closed"):
        loop_thread.run(coro)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED  # no "never awaited"


async def test_it_refuses_to_block_a_running_event_loop(loop_thread: LoopThread) -> None:
    with pytest.raises(RuntimeError, match="AsyncClient"):
        loop_thread.run(current_thread_name())
    assert not loop_thread.running
