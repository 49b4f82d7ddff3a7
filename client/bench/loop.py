"""Running the bench's event loop: uvloop when it is installed (about twice the SSE events per
core at the same timing error, see docs/bench.md), the standard loop otherwise; the heap that
exists before the load is frozen out of the garbage collector's sight to shorten its pauses."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["event_loop_factory", "loop_name", "run_fast"]

T = TypeVar("T")


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's loop factory when uvloop is installed, else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def loop_name() -> str:
    return "asyncio" if event_loop_factory() is asyncio.new_event_loop else "uvloop"


def run_fast(coro: Coroutine[Any, Any, T]) -> T:
    gc.freeze()
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(coro)
