"""The thread engine: a model thread behind an asyncio-friendly front (`base.ModelEngine`).

The event loop never runs the model. `Engine.submit` hands a validated request to a dedicated
thread, which drives a `Scheduler` step by step; after each step, all of the step's tokens go to
their requests' `asyncio.Queue`s through one `loop.call_soon_threadsafe`. Leaving a
`GenerationHandle`'s `with` block early (the client went away, the handler was cancelled) marks
the job cancelled, and the scheduler drops it at its next step.

`submit_to` delivers a request's events to an `EventSink` of the caller's instead of a queue:
its `put_nowait` runs on the event loop inside that same hand-off, so a streaming response can
write each token straight to its socket without waking its handler once per token.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading

from tgi_server.engine.base import EventSink, GenerationHandle, JobHandle, ServedModel
from tgi_server.errors import GenerationError
from tgi_server.generation.events import EngineEvent
from tgi_server.scheduler.base import Job, Scheduler, SchedulerStats, step_or_fail
from tgi_server.validation import ValidatedRequest

__all__ = ["Engine"]

log = logging.getLogger(__name__)

HANDOFF_WAIT_S = 0.002
"""How long the model thread waits, after a step, for the event loop to take its events."""


class Engine:
    """Runs a scheduler on its own thread and connects it to asyncio handlers."""

    def __init__(self, scheduler: Scheduler, model: ServedModel) -> None:
        self.model = model
        self._scheduler = scheduler
        self._inbox: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: list[tuple[EventSink, EngineEvent]] = []
        """Events of the current step, handed to the event loop together after the step."""

    @property
    def stats(self) -> SchedulerStats:
        return self._scheduler.stats

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def start(self) -> None:
        """Start the model thread; tokens will be delivered on the running event loop."""
        if self._thread is not None:
            raise RuntimeError("the engine has already been started")
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._work, name="tgis-engine", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Fail what is still queued or running, and wait for the model thread to end."""
        if self._thread is None:
            return
        self._inbox.put(None)  # the stop signal
        await asyncio.to_thread(self._thread.join)

    def submit(self, request: ValidatedRequest) -> GenerationHandle:
        """Queue `request`; its events arrive through the returned handle."""
        events: asyncio.Queue[EngineEvent] = asyncio.Queue()
        return GenerationHandle(events, self._queue(request, events).set)

    def submit_to(self, request: ValidatedRequest, sink: EventSink) -> JobHandle:
        """Queue `request`; its events go to `sink.put_nowait`, on the event loop."""
        return JobHandle(self._queue(request, sink).set)

    def _queue(self, request: ValidatedRequest, sink: EventSink) -> threading.Event:
        if self._loop is None or not self.running:
            raise GenerationError("Server error: the engine is not running")
        job = Job(request=request, emit=_Deliver(self._outbox, sink))
        self._inbox.put(job)
        return job.cancelled

    def _work(self) -> None:
        while self._take_jobs(block=not self._scheduler.has_work()):
            step_or_fail(self._scheduler)
            self._flush()
        self._drain_inbox()
        self._scheduler.abort_all(GenerationError("Server error: the server is shutting down"))
        self._flush()

    def _flush(self) -> None:
        """Hand the step's events to the event loop in one wake-up (not one per token), and
        wait (briefly) until it has taken them.

        Without the wait the event loop could starve: a forward pass releases and retakes the
        GIL around every torch op, and CPython only forces a switch to a waiting thread when no
        switch happened for a whole switch interval, so the loop could wait milliseconds
        (several steps) to send a step's tokens. Waiting here costs little: with the GIL, the
        loop's work and the next forward would not run at the same time anyway."""
        if not self._outbox or self._loop is None:
            return
        batch, self._outbox[:] = list(self._outbox), []
        delivered = threading.Event()  # this batch's own: a late earlier one must not set it
        try:
            self._loop.call_soon_threadsafe(_put_all, batch, delivered)
        except RuntimeError:
            log.debug("event loop closed; dropping %d events", len(batch))
            return
        delivered.wait(HANDOFF_WAIT_S)

    def _take_jobs(self, *, block: bool) -> bool:
        """Move submitted jobs to the scheduler; False once told to stop."""
        try:
            item = self._inbox.get(block=block)
        except queue.Empty:
            return True
        while item is not None:
            self._scheduler.add(item)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return True
        return False

    def _drain_inbox(self) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._scheduler.add(item)


class _Deliver:
    """Collects one request's events on the model thread, for the engine to flush."""

    def __init__(self, outbox: list[tuple[EventSink, EngineEvent]], sink: EventSink) -> None:
        self._outbox = outbox
        self._sink = sink

    def __call__(self, event: EngineEvent) -> None:
        self._outbox.append((self._sink, event))


def _put_all(batch: list[tuple[EventSink, EngineEvent]], delivered: threading.Event) -> None:
    """On the event loop: every event to its request's sink, in order."""
    for sink, event in batch:
        try:
            sink.put_nowait(event)
        except Exception:  # one broken sink must not starve the others of their events
            log.exception("an event sink failed")
    delivered.set()
