"""The scheduler contract: which requests get the model, one step at a time.

The engine calls `Scheduler.step()` in a loop, on one thread (the thread engine's, or the
shard's); each step is one forward pass worth of work, and every token it produces goes to its
job's `emit` callback. `sequential.SequentialScheduler` is the simplest correct policy;
`batching.BatchingScheduler` is TGI's continuous-batching loop (prefill arrivals, concatenate,
decode, filter). Either replaces the other without touching the engine or the HTTP layer.

A job whose client went away has `cancelled` set; the scheduler drops it at its next step, so
its slot goes to the next request at once.

This module imports no torch, transformers or llguidance, nor does anything it imports
(tests/unit/tgi_server/test_contracts.py holds it to that).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from tgi_server.errors import BackendError, GenerationError
from tgi_server.generation.events import EngineEvent
from tgi_server.scheduler.timings import BatchTimings
from tgi_server.validation import ValidatedRequest

__all__ = ["Job", "Scheduler", "SchedulerStats", "step_or_fail"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Job:
    """One request as the scheduler sees it."""

    request: ValidatedRequest
    emit: Callable[[EngineEvent], None]
    """Thread-safe: hands an event to the waiting request."""
    cancelled: threading.Event = field(default_factory=threading.Event)
    queued_at: float = field(default_factory=time.monotonic)

    @property
    def input_length(self) -> int:
        return self.request.input_length

    @property
    def max_new_tokens(self) -> int:
        return self.request.max_new_tokens

    def is_cancelled(self) -> bool:
        return self.cancelled.is_set()


@dataclass
class SchedulerStats:
    """Counters, for health checks, metrics and tests. Written only by the thread that steps the
    scheduler."""

    started: int = 0
    completed: int = 0
    cancelled: int = 0
    failed: int = 0
    queue_size: int = 0
    """Requests waiting for the model, as of the last step."""
    batch_size: int = 0
    """Requests on the model, as of the last step."""
    batch_max_tokens: int = 0
    """The most tokens the running batch may come to hold (TGI's `max_tokens`), as of the last
    step."""
    forwards: dict[str, int] = field(default_factory=lambda: {"prefill": 0, "decode": 0})
    """Forward passes run, by method."""
    failed_forwards: dict[str, int] = field(default_factory=lambda: {"prefill": 0, "decode": 0})
    """Forward passes that failed, by method."""
    concats: dict[str, int] = field(default_factory=lambda: {"backpressure": 0, "wait_exceeded": 0})
    """New requests joined to a running batch, by why they were let in (TGI's reasons)."""
    timings: BatchTimings = field(default_factory=BatchTimings)
    """TGI's per-batch histograms (phase durations, new batch sizes, joins)."""

    def forward(self, method: str, *, ok: bool) -> None:
        """Count one forward pass (`method`: "prefill" or "decode")."""
        self.forwards[method] += 1
        if not ok:
            self.failed_forwards[method] += 1


class Scheduler(Protocol):
    """What the engine needs of a scheduler. Every method is called on the one thread that
    steps it."""

    stats: SchedulerStats

    def add(self, job: Job) -> None:
        """Queue a job. Called on the engine thread only."""
        ...

    def has_work(self) -> bool:
        """Whether `step` has anything to do."""
        ...

    def step(self) -> None:
        """Run one step of the model for the jobs chosen now, emitting their tokens."""
        ...

    def abort_all(self, error: BackendError) -> None:
        """Fail every queued and running job with `error` (on shutdown or after a fault)."""
        ...


def step_or_fail(scheduler: Scheduler) -> None:
    """One step of `scheduler`, if it has work: what both engines run in their loop. A step
    that raises fails every job the scheduler holds (logged with its traceback), and the engine
    goes on serving."""
    if not scheduler.has_work():
        return
    try:
        scheduler.step()
    except Exception:
        log.exception("the scheduler failed; failing its requests")
        scheduler.abort_all(GenerationError("Server error: scheduler failure"))
