"""The model server, TGI's "shard": a process of its own that runs only the model.

`tgi-serverless backend` starts it as `python -m tgi_server.engine.shard FD` (`launch`; the
package's `__main__` calls `main`) and talks to it over a socket pair (`wire`); its first message
is the settings.

In one process, the model thread and the event loop share one GIL: every token's socket write
on the loop held up the next forward pass, and with a small model the two cost about the same.
Here the shard steps its scheduler without ever waiting for HTTP: after each step it sends all
of the step's events in one message and goes on; the HTTP server writes them to the clients
meanwhile, on another core.

The shard ignores SIGINT and SIGTERM: the HTTP server receives them too, ends its requests
gracefully, then tells the shard to stop. When the HTTP server's end of the socket closes (it
exited, however), the shard stops at its next step.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, cast

from tgi_server.engine.shard.launch import SHARD_PROCESS_NAME
from tgi_server.engine.shard.wire import FrameReader, Message, encode_events, frame
from tgi_server.errors import BackendError, GenerationError
from tgi_server.generation.events import EngineEvent, FailureEvent
from tgi_server.generation.grammar import CompiledGrammar
from tgi_server.scheduler.base import Job, Scheduler, step_or_fail
from tgi_server.settings import BackendSettings
from tgi_server.validation import ValidatedRequest

__all__ = ["ShardLoop", "run_shard"]

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 0.05
"""While busy, the scheduler's counters go to the HTTP server at most this often (and whenever
a request ends, so `/metrics` read after a response already counts it)."""
RECEIVE_BYTES = 1 << 16
ABANDON_POLL_S = 0.5
"""How often the watcher of a loading shard looks whether it should still watch."""

CompileKey = Callable[[str], CompiledGrammar]


def run_shard(sock: socket.socket, settings: BackendSettings) -> bool:
    """The shard process's entry point: load the model, say ready, serve until told to stop.
    False if the model could not be loaded."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _take_the_shards_name()
    loading = threading.Event()
    loading.set()
    threading.Thread(
        target=_exit_if_abandoned, args=(sock, loading), name="tgis-abandoned", daemon=True
    ).start()
    from transformers.utils import logging as transformers_logging

    from tgi_server.model.loading import (
        build_model_server,
        fit_to_context,
        load_model,
        model_context,
    )

    # As the HTTP server does: log lines only, no progress bars.
    cast(Any, transformers_logging).disable_progress_bar()

    try:
        loaded = load_model(settings)
        # The same fit as the HTTP server's, which tells the user about it.
        settings = fit_to_context(settings, model_context(loaded.model), warn=False)
        scheduler, served = build_model_server(loaded, settings)
    except Exception as exc:
        log.exception("Error when initializing model")
        model = settings.model_id or "the built-in tiny model"
        sock.sendall(frame(("failed", f"cannot load {model}: {type(exc).__name__}: {exc}")))
        return False
    loading.clear()
    try:
        sock.sendall(frame(("ready", served.device_type, served.device_name)))
    except OSError:
        return True  # the HTTP server gave up meanwhile
    gc.collect()
    gc.freeze()  # as in the HTTP server: leave the loaded model out of every full collection
    grammar = served.grammar
    ShardLoop(sock, scheduler, grammar.compile_key if grammar else None).run()
    return True


def _take_the_shards_name() -> None:
    """Show as SHARD_PROCESS_NAME in `ps` and `top` (Linux; elsewhere nothing changes)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(SHARD_PROCESS_NAME)


def _exit_if_abandoned(sock: socket.socket, loading: threading.Event) -> None:
    """While the model loads (minutes, for a large one), nothing reads the socket: end the
    process at once if the HTTP server goes away meanwhile (it sends nothing before `ready`,
    so the socket turns readable only by closing). It could not stop us with a signal: we
    ignore SIGTERM and SIGINT, and a supervisor kills only the server's own process."""
    while loading.is_set():
        readable, _, _ = select.select([sock], [], [], ABANDON_POLL_S)
        if not readable or not loading.is_set():
            continue
        try:
            closed = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            continue
        except OSError:
            closed = True
        if closed:
            log.warning("the HTTP server went away while the model loaded; exiting")
            os._exit(1)
        return


def main(argv: list[str]) -> int:
    """`python -m tgi_server.engine.shard FD`: serve on the socket with file descriptor FD."""
    sock = socket.socket(fileno=int(argv[0]))
    message = _first_message(sock)
    if message is None or message[0] != "start":
        log.error("the HTTP server sent no start message; exiting")
        return 1
    _, settings, logs = message
    logs.apply()
    return 0 if run_shard(sock, settings) else 1


def _first_message(sock: socket.socket) -> Message | None:
    reader = FrameReader()
    while True:
        data = sock.recv(RECEIVE_BYTES)
        if not data:
            return None
        messages = reader.feed(data)
        if messages:  # the HTTP server sends nothing else before the shard is ready
            return messages[0]


class ShardLoop:
    """Takes the HTTP server's messages, steps the scheduler, sends each step's events."""

    def __init__(
        self,
        sock: socket.socket,
        scheduler: Scheduler,
        compile_key: CompileKey | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sock = sock
        self._scheduler = scheduler
        self._compile_key = compile_key
        self._clock = clock
        self._reader = FrameReader()
        self._jobs: dict[int, Job] = {}
        """Jobs that have not ended, by id: a cancel message finds its job here."""
        self._outbox: list[tuple[int, EngineEvent]] = []
        self._ended = False
        """Whether a job ended since the counters were last sent."""
        self._stats_sent_at = float("-inf")
        self._grammars = _GrammarCompilations(compile_key)

    def run(self) -> None:
        """Serve until told to stop or the socket closes."""
        try:
            while self._receive(block=not self._scheduler.has_work()):
                self._admit_compiled()
                step_or_fail(self._scheduler)
                self._send()
            shutting_down = GenerationError("Server error: the server is shutting down")
            self._scheduler.abort_all(shutting_down)
            for job_id in self._grammars.abandon():
                self._fail(job_id, shutting_down)
            self._send()
        except OSError as exc:  # the HTTP server is gone: nobody is left to serve
            log.info("the HTTP server closed the connection (%s); stopping", exc)
        finally:
            self._grammars.close()
            self._sock.close()

    def _receive(self, *, block: bool) -> bool:
        """Apply every message that has arrived (waiting for one if `block`); False once told
        to stop or the HTTP server's end closed."""
        if block:
            readable, _, _ = select.select([self._sock, self._grammars.wakeup], [], [])
            if self._grammars.wakeup in readable:
                self._grammars.woken()
        while True:
            try:
                data = self._sock.recv(RECEIVE_BYTES, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return True
            if not data:
                return False
            for message in self._reader.feed(data):
                if not self._apply(message):
                    return False

    def _apply(self, message: Message) -> bool:
        kind = message[0]
        if kind == "submit":
            _, job_id, queued_at, request = message
            self._submit(job_id, queued_at, request)
        elif kind == "cancel":
            job = self._jobs.pop(message[1], None)
            if job is not None:
                job.cancelled.set()
            self._grammars.forget(message[1])
        elif kind == "stop":
            return False
        else:
            log.error("unknown message from the HTTP server: %r", kind)
        return True

    def _submit(self, job_id: int, queued_at: float, request: ValidatedRequest) -> None:
        if isinstance(request.grammar, str):  # its key: compiled on a thread, then admitted
            try:
                self._grammars.start(job_id, queued_at, request)
            except BackendError as exc:
                self._fail(job_id, exc)
            return
        self._add(job_id, queued_at, request)

    def _admit_compiled(self) -> None:
        """Jobs whose grammar has compiled join the scheduler's queue (or fail, if it could
        not be compiled)."""
        for job_id, queued_at, request, outcome in self._grammars.finished():
            if isinstance(outcome, BaseException):
                self._fail(job_id, outcome)
            else:
                self._add(job_id, queued_at, replace(request, grammar=outcome))

    def _add(self, job_id: int, queued_at: float, request: ValidatedRequest) -> None:
        job = Job(request=request, emit=partial(self._emit, job_id), queued_at=queued_at)
        self._jobs[job_id] = job
        self._scheduler.add(job)

    def _fail(self, job_id: int, exc: BaseException) -> None:
        if isinstance(exc, GenerationError):
            error = exc
        elif isinstance(exc, BackendError):
            error = GenerationError(exc.message)
        else:
            error = GenerationError(f"Server error: {exc}")
        self._outbox.append((job_id, FailureEvent(error)))
        self._ended = True

    def _emit(self, job_id: int, event: EngineEvent) -> None:
        self._outbox.append((job_id, event))
        if isinstance(event, FailureEvent) or event.completion is not None:
            self._jobs.pop(job_id, None)
            self._ended = True

    def _send(self) -> None:
        """The step's events (and, when due, the counters) in one message."""
        now = self._clock()
        idle = not self._scheduler.has_work() and not self._grammars.pending
        stats_due = self._ended or idle or now - self._stats_sent_at >= STATS_INTERVAL_S
        if not self._outbox and not stats_due:
            return
        stats = self._scheduler.stats if stats_due else None
        events, self._outbox = self._outbox, []
        self._sock.sendall(frame(("step", encode_events(events), stats)))
        if stats_due:
            self._stats_sent_at = now
            self._ended = False


class _GrammarCompilations:
    """Grammars compiling on a thread, so that a new schema (a complex one may take up to a
    second) never holds up the step loop; llguidance releases the GIL while it builds one.
    `wakeup` turns readable when one finishes, for a shard waiting in `select`."""

    def __init__(self, compile_key: CompileKey | None) -> None:
        self._compile_key = compile_key
        self._executor: ThreadPoolExecutor | None = None
        self._running: dict[int, tuple[float, ValidatedRequest, Future[CompiledGrammar]]] = {}
        self.wakeup, self._wake = socket.socketpair()
        self.wakeup.setblocking(False)

    @property
    def pending(self) -> bool:
        return bool(self._running)

    def start(self, job_id: int, queued_at: float, request: ValidatedRequest) -> None:
        if self._compile_key is None:
            raise GenerationError("Server error: this model server cannot compile grammars")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="tgis-grammar")
        future = self._executor.submit(self._compile_key, str(request.grammar))
        self._running[job_id] = (queued_at, request, future)
        future.add_done_callback(self._wake_up)

    def finished(
        self,
    ) -> list[tuple[int, float, ValidatedRequest, CompiledGrammar | BaseException]]:
        """The compilations done since the last call, each with its grammar or its error."""
        done = [job_id for job_id, (_, _, future) in self._running.items() if future.done()]
        results: list[tuple[int, float, ValidatedRequest, CompiledGrammar | BaseException]] = []
        for job_id in done:
            queued_at, request, future = self._running.pop(job_id)
            error = future.exception()
            results.append((job_id, queued_at, request, error or future.result()))
        return results

    def forget(self, job_id: int) -> None:
        """A cancelled job: its grammar may finish compiling; nobody waits for it."""
        self._running.pop(job_id, None)

    def abandon(self) -> list[int]:
        """The jobs still waiting for their grammar, forgotten (on shutdown)."""
        jobs = list(self._running)
        self._running.clear()
        return jobs

    def woken(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self.wakeup.recv(RECEIVE_BYTES):
                pass

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.wakeup.close()
        self._wake.close()

    def _wake_up(self, _: Future[CompiledGrammar]) -> None:
        with contextlib.suppress(OSError):  # full (already woken) or closed (shutting down)
            self._wake.send(b"!", socket.MSG_DONTWAIT)
