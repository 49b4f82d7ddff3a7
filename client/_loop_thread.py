"""An asyncio event loop in a background thread, so synchronous code can run coroutines on it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


class _Exhausted:
    """Returned instead of raising StopAsyncIteration across the thread boundary."""


_EXHAUSTED = _Exhausted()


class LoopThread:
    """Starts its loop on first use; `stop()` cancels what is left, closes the loop, joins."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def running(self) -> bool:
        return self._loop is not None and not self._stopped

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and block until it finishes; an interrupt cancels it there."""
        try:
            _refuse_to_block_a_running_loop()
            loop = self._started_loop()
        except RuntimeError:
            coro.close()
            raise
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def iterate(self, agen: AsyncGenerator[T, None]) -> Generator[T, None, None]:
        """Iterate an async generator from synchronous code; closing the iterator closes it."""
        # One step of `agen` at a time: after an interrupt, the cancelled step may still be
        # unwinding on the loop when the close arrives.
        turn = asyncio.Lock()
        try:
            while True:
                item = self.run(_next_or_exhausted(agen, turn))
                if isinstance(item, _Exhausted):
                    return
                yield item
        finally:
            if self.running:
                self.run(_aclose(agen, turn))

    def stop(self) -> None:
        """Idempotent; blocks until the loop thread has finished."""
        with self._lock:
            already_stopped, self._stopped = self._stopped, True
            loop, thread = self._loop, self._thread
        if already_stopped or loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()

    def _started_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._stopped:
                raise RuntimeError("this client is closed")
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=_serve_forever, args=(self._loop,), name=self._name, daemon=True
                )
                self._thread.start()
            return self._loop


def _refuse_to_block_a_running_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError("the synchronous Client would block this event loop: use AsyncClient")


async def _next_or_exhausted(agen: AsyncGenerator[T, None], turn: asyncio.Lock) -> T | _Exhausted:
    async with turn:
        try:
            return await anext(agen)
        except StopAsyncIteration:
            return _EXHAUSTED


async def _aclose(agen: AsyncGenerator[Any, None], turn: asyncio.Lock) -> None:
    async with turn:
        await agen.aclose()


def _serve_forever(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        _cancel_pending_tasks(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        asyncio.set_event_loop(None)
        loop.close()


def _cancel_pending_tasks(loop: asyncio.AbstractEventLoop) -> None:
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
