"""The sequential scheduler: first come, first served, one sequence on the model at a time.

The simplest correct `base.Scheduler`: each step prefills the next live job or decodes one token
of the running one, on that sequence's own KV cache. It serves models the batching scheduler
cannot batch (`model.batch_runner.supports_padded_batching`), and `--scheduler sequential`.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import torch

from tgi_server.errors import BackendError, GenerationError
from tgi_server.generation.events import FailureEvent, TokenEvent
from tgi_server.generation.sequence import SequenceState
from tgi_server.model.codec import TextCodec
from tgi_server.model.runner import Runner
from tgi_server.scheduler.base import Job, SchedulerStats

__all__ = ["SequentialScheduler"]

log = logging.getLogger(__name__)


@dataclass
class _Running:
    job: Job
    state: SequenceState
    cache: Any
    started_at: float


class SequentialScheduler:
    """First come, first served; one sequence at a time, decoded on its own KV cache."""

    def __init__(self, runner: Runner, codec: TextCodec, eos_token_ids: Iterable[int]) -> None:
        self._runner = runner
        self._codec = codec
        self._eos_token_ids = frozenset(eos_token_ids)
        self._waiting: deque[Job] = deque()
        self._running: _Running | None = None
        self.stats = SchedulerStats()

    def add(self, job: Job) -> None:
        self._waiting.append(job)

    def has_work(self) -> bool:
        return self._running is not None or bool(self._waiting)

    def step(self) -> None:
        with torch.inference_mode():
            if self._running is not None and self._running.job.cancelled.is_set():
                self._drop(self._running)
            if self._running is None:
                self._start_next()
            else:
                self._decode(self._running)
        self.stats.queue_size = len(self._waiting)
        self.stats.batch_size = 0 if self._running is None else 1
        request = None if self._running is None else self._running.job.request
        self.stats.batch_max_tokens = (
            0 if request is None else request.input_length + request.max_new_tokens
        )

    def abort_all(self, error: BackendError) -> None:
        jobs = list(self._waiting)
        self._waiting.clear()
        if self._running is not None:
            jobs.append(self._running.job)
            self._running = None
        for job in jobs:
            self.stats.failed += 1
            job.emit(FailureEvent(error))

    def _start_next(self) -> None:
        job = self._next_live_job()
        if job is None:
            return
        self.stats.started += 1
        started_at = time.monotonic()
        try:
            state = SequenceState(
                job.request, self._codec, self._eos_token_ids, self._runner.device
            )
            prefill = self._runner.prefill(
                job.request.input_ids, all_logits=job.request.decoder_input_details
            )
            if prefill.prompt_logits is not None:
                state.record_prefill(prefill.prompt_logits)
            running = _Running(job, state, prefill.cache, started_at)
            self._publish(running, state.advance(prefill.next_logits))
        except Exception as exc:
            log.exception("generation failed at prefill")
            self.stats.forward("prefill", ok=False)
            self._fail(job, exc)
            return
        self.stats.forward("prefill", ok=True)

    def _decode(self, running: _Running) -> None:
        try:
            logits = self._runner.decode(running.state.last_token_id, running.cache)
            self._publish(running, running.state.advance(logits))
        except Exception as exc:
            log.exception("generation failed at decode")
            self.stats.forward("decode", ok=False)
            self._running = None
            self._fail(running.job, exc)
            return
        self.stats.forward("decode", ok=True)

    def _publish(self, running: _Running, event: TokenEvent) -> None:
        if running.state.finished:
            completion = running.state.completion(
                running.job.queued_at, running.started_at, time.monotonic()
            )
            event = replace(event, completion=completion)
            self._running = None
            self.stats.completed += 1
        else:
            self._running = running
        running.job.emit(event)

    def _next_live_job(self) -> Job | None:
        while self._waiting:
            job = self._waiting.popleft()
            if not job.cancelled.is_set():
                return job
            self.stats.cancelled += 1
        return None

    def _drop(self, running: _Running) -> None:
        log.debug("dropping a cancelled request after %d tokens", running.state.generated_count)
        self._running = None
        self.stats.cancelled += 1

    def _fail(self, job: Job, exc: Exception) -> None:
        self.stats.failed += 1
        job.emit(FailureEvent(GenerationError(f"Server error: {exc}")))
