"""The engine contract: what the HTTP layer needs of whatever runs the model.

`ModelEngine` takes validated requests (`submit`, `submit_to`) and delivers each one's events,
on the event loop, to a queue behind a `GenerationHandle` or to an `EventSink` of the caller's.
`thread.Engine` runs the model on a thread of this process, `shard.engine.ShardEngine` in a
model-server process of its own; the HTTP layer, the service and the health check know only
this module.

This module imports no torch, transformers or llguidance, nor does anything it imports
(tests/unit/tgi_server/test_contracts.py holds it to that): a process that only serves HTTP,
or a tool that only reads the contract, does not pay for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tgi_server.generation.events import EngineEvent
from tgi_server.model.codec import TextCodec
from tgi_server.scheduler.base import SchedulerStats
from tgi_server.validation import ValidatedRequest

if TYPE_CHECKING:  # for the type checker only: the grammar module imports torch
    from tgi_server.generation.grammar import GrammarCompiler

__all__ = ["EventSink", "GenerationHandle", "JobHandle", "ModelEngine", "ServedModel"]


@dataclass(frozen=True)
class ServedModel:
    """What the HTTP layer needs to know about the model the engine runs."""

    model_id: str
    codec: TextCodec
    device_type: str
    """"cpu", "cuda", ...: the torch device type the model runs on."""
    device_name: str | None = None
    """The accelerator's name (e.g. "NVIDIA H200") when there is one."""
    grammar: GrammarCompiler | None = None
    """Compiles `grammar` parameters; None when structured generation is unavailable.

    Its type is imported for the type checker only: `generation.grammar` imports torch (its
    `TokenConstraint` masks logits), and this contract must not. Nothing reads the annotation
    at run time; whoever builds a `ServedModel` with a compiler (`model.loading`) has torch
    loaded already."""


class EventSink(Protocol):
    """Where a request's events go; called on the event loop, in order, never concurrently."""

    def put_nowait(self, item: EngineEvent, /) -> None: ...


class JobHandle:
    """A submitted request, to cancel. Use it as a context manager: leaving it cancels."""

    def __init__(self, cancel: Callable[[], None]) -> None:
        self._cancel = cancel

    def cancel(self) -> None:
        """Tell the engine to stop working on this request (harmless once it has finished)."""
        self._cancel()

    def __enter__(self) -> JobHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cancel()


class GenerationHandle(JobHandle):
    """One submitted request's view of its events. Use it as a context manager."""

    def __init__(self, events: asyncio.Queue[EngineEvent], cancel: Callable[[], None]) -> None:
        super().__init__(cancel)
        self._events = events

    async def next_event(self) -> EngineEvent:
        """The request's next event (its last one carries the completion, or is a failure)."""
        return await self._events.get()

    def __enter__(self) -> GenerationHandle:
        return self


class ModelEngine(Protocol):
    """What the HTTP layer needs of an engine: `thread.Engine` runs the model on a thread of
    this process, `shard.engine.ShardEngine` in a model-server process of its own."""

    @property
    def model(self) -> ServedModel: ...

    @property
    def stats(self) -> SchedulerStats:
        """The scheduler's counters, as of its latest step."""
        ...

    @property
    def running(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def submit(self, request: ValidatedRequest) -> GenerationHandle:
        """Queue `request`; its events arrive through the returned handle."""
        ...

    def submit_to(self, request: ValidatedRequest, sink: EventSink) -> JobHandle:
        """Queue `request`; its events go to `sink.put_nowait`, on the event loop."""
        ...
