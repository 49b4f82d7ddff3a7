"""Continuous batching: TGI's router loop over one padded batch, one model step at a time.

Each `step` is one forward pass. First, rows whose client went away leave the batch. Then, if
the admission policy lets waiting requests in (`admission`), they are prefilled together
as a new batch while the running rows pause for that one forward, and joined to the running
batch; otherwise every running row decodes one token. After each forward, every row's token
goes to its request and rows that finished leave the batch.

Every row keeps its own `SequenceState`: its sampling parameters, seeded generator, penalties,
stop sequences and detokenizer, so requests in a shared batch are served as if alone. Rows that
decode greedily without penalties (the common case) get their tokens from one batched argmax.
A failed prefill fails only the requests it was admitting; a failed decode fails the batch.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import torch

from tgi_server.errors import BackendError, GenerationError
from tgi_server.generation.events import FailureEvent, TokenEvent
from tgi_server.generation.sequence import SequenceState
from tgi_server.model.batch_runner import BatchRunner, PaddedBatch
from tgi_server.model.codec import TextCodec
from tgi_server.scheduler.admission import BatchLimits, batch_tokens, bounds, next_batch
from tgi_server.scheduler.base import Job, SchedulerStats

__all__ = ["BatchingScheduler"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Row:
    job: Job
    state: SequenceState
    started_at: float


class BatchingScheduler:
    """Continuous batching behind the `Scheduler` protocol."""

    def __init__(
        self,
        runner: BatchRunner,
        codec: TextCodec,
        eos_token_ids: Iterable[int],
        limits: BatchLimits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._runner = runner
        self._codec = codec
        self._eos_token_ids = frozenset(eos_token_ids)
        self._limits = limits or BatchLimits()
        self._clock = clock
        self._waiting: deque[Job] = deque()
        self._rows: list[_Row] = []
        self._jobs: list[Job] = []
        """The rows' jobs, in row order (kept with the rows; read at every step)."""
        self._batch: PaddedBatch | None = None
        self._steps_since_join = 0
        self._filter_seconds = 0.0
        """Time spent filtering the batch during the step being recorded."""
        self.stats = SchedulerStats()

    @property
    def batch_size(self) -> int:
        """How many requests are in the running batch."""
        return len(self._rows)

    def add(self, job: Job) -> None:
        self._waiting.append(job)

    def has_work(self) -> bool:
        return bool(self._rows) or bool(self._waiting)

    def step(self) -> None:
        with torch.inference_mode():
            self._filter_seconds = 0.0
            self._drop_cancelled()
            admission = bounds(
                self._limits,
                self._jobs,
                self._steps_since_join,
                running_tokens=self.stats.batch_max_tokens,
            )
            joining, dropped = next_batch(self._waiting, self._limits, admission)
            self.stats.cancelled += dropped
            if joining:
                if self._rows:
                    waited = self._steps_since_join >= self._limits.max_waiting_tokens
                    self.stats.concats["wait_exceeded" if waited else "backpressure"] += 1
                self._prefill(joining)
            elif self._rows:
                self._decode()
        self.stats.queue_size = len(self._waiting)
        self.stats.batch_size = len(self._rows)

    def abort_all(self, error: BackendError) -> None:
        jobs = [*self._waiting, *(row.job for row in self._rows)]
        self._waiting.clear()
        self._set_rows([])
        self._batch = None
        for job in jobs:
            self.stats.failed += 1
            job.emit(FailureEvent(error))

    def _prefill(self, jobs: list[Job]) -> None:
        started_at = self._clock()
        self.stats.started += len(jobs)
        self.stats.timings.new_batch(len(jobs))
        try:
            rows = [_Row(job, self._new_state(job), started_at) for job in jobs]
            forward_at = self._clock()
            prefill = self._runner.prefill(
                [job.request.input_ids for job in jobs],
                all_logits=[job.request.decoder_input_details for job in jobs],
            )
            forwarded_at = self._clock()
            for row, prompt_logits in zip(rows, prefill.prompt_logits, strict=True):
                if prompt_logits is not None:
                    row.state.record_prefill(prompt_logits)
            events = _choose(rows, prefill.next_logits)
        except Exception as exc:
            log.exception("generation failed at prefill")
            self.stats.forward("prefill", ok=False)
            self._fail(jobs, exc)
            return
        self.stats.forward("prefill", ok=True)
        chosen_at = self._clock()
        if self._batch is None:
            self._batch = prefill.batch
        else:
            self._batch = self._runner.concatenate(self._batch, prefill.batch)
            self.stats.timings.concatenated(self._clock() - chosen_at)
        first = len(self._rows)
        self._set_rows(self._rows + rows)
        self._steps_since_join = 1
        self._record_step("prefill", started_at, forward_at, forwarded_at, chosen_at, events, first)

    def _decode(self) -> None:
        assert self._batch is not None
        started_at = self._clock()
        try:
            last = [row.state.last_token_id for row in self._rows]
            logits = self._runner.decode(self._batch, last)
            forwarded_at = self._clock()
            events = _choose(self._rows, logits)
        except Exception as exc:
            log.exception("generation failed at decode")
            self.stats.forward("decode", ok=False)
            jobs = [row.job for row in self._rows]
            self._set_rows([])
            self._batch = None
            self._fail(jobs, exc)
            return
        self.stats.forward("decode", ok=True)
        self._steps_since_join += 1
        chosen_at = self._clock()
        self._record_step("decode", started_at, started_at, forwarded_at, chosen_at, events, 0)

    def _record_step(
        self,
        method: str,
        started_at: float,
        forward_at: float,
        forwarded_at: float,
        chosen_at: float,
        events: list[TokenEvent],
        first: int,
    ) -> None:
        """Publish a forward pass's events, then record its phases as TGI does."""
        published_at = self._clock()
        filtered_before = self._filter_seconds
        self._publish(events, first=first)
        done_at = self._clock()
        publishing = done_at - published_at - (self._filter_seconds - filtered_before)
        self.stats.timings.step(
            method,
            forward=forwarded_at - forward_at,
            decode=chosen_at - forwarded_at + publishing,
            filter=self._filter_seconds,
            inference=done_at - started_at,
        )

    def _publish(self, events: list[TokenEvent], *, first: int = 0) -> None:
        """Send rows `first`... their events, in order; finished rows leave the batch."""
        now = self._clock()
        keep = list(range(first))
        for index, (row, event) in enumerate(zip(self._rows[first:], events, strict=True), first):
            if row.state.finished:
                completion = row.state.completion(row.job.queued_at, row.started_at, now)
                event = replace(event, completion=completion)
                self.stats.completed += 1
            else:
                keep.append(index)
            row.job.emit(event)
        self._keep(keep)

    def _drop_cancelled(self) -> None:
        keep = [i for i, row in enumerate(self._rows) if not row.job.cancelled.is_set()]
        dropped = len(self._rows) - len(keep)
        if dropped:
            log.debug("dropping %d cancelled request(s) from the batch", dropped)
            self.stats.cancelled += dropped
            self._keep(keep)

    def _keep(self, keep: list[int]) -> None:
        if len(keep) == len(self._rows):
            return
        self._set_rows([self._rows[i] for i in keep])
        if not keep:
            self._batch = None
        elif self._batch is not None:
            filter_at = self._clock()
            self._batch = self._runner.filter(self._batch, keep)
            self._filter_seconds += self._clock() - filter_at

    def _set_rows(self, rows: list[_Row]) -> None:
        self._rows = rows
        self._jobs = [row.job for row in rows]
        self.stats.batch_max_tokens = batch_tokens(self._jobs)

    def _new_state(self, job: Job) -> SequenceState:
        return SequenceState(job.request, self._codec, self._eos_token_ids, self._runner.device)

    def _fail(self, jobs: list[Job], exc: Exception) -> None:
        for job in jobs:
            self.stats.failed += 1
            job.emit(FailureEvent(GenerationError(f"Server error: {exc}")))


def _choose(rows: list[_Row], logits: torch.Tensor) -> list[TokenEvent]:
    """Each row's next token from its logits row ([rows, V]), greedy rows in one batch."""
    states = [row.state for row in rows]
    greedy = [i for i, state in enumerate(states) if state.plain_greedy]
    if len(greedy) == len(states):  # the common case: one argmax for the whole batch
        return _accept_greedy(states, logits)
    events: list[TokenEvent | None] = [None] * len(states)
    if greedy:
        chosen = _accept_greedy([states[i] for i in greedy], logits[greedy])
        for i, event in zip(greedy, chosen, strict=True):
            events[i] = event
    for i, state in enumerate(states):
        if events[i] is None:
            events[i] = state.advance(logits[i : i + 1])
    return [event for event in events if event is not None]


def _accept_greedy(states: list[SequenceState], logits: torch.Tensor) -> list[TokenEvent]:
    """The argmax of each row of `logits` ([rows, V]) as its state's next token."""
    scores = logits.to(torch.float32)
    logprobs = torch.log_softmax(scores, dim=-1)
    ids = torch.nan_to_num(scores, nan=-torch.inf).argmax(dim=-1, keepdim=True)
    chosen = logprobs.gather(1, ids).squeeze(1).tolist()
    return [
        state.accept(token_id, logprob, logprobs[row] if state.wants_alternatives else None)
        for row, (state, token_id, logprob) in enumerate(
            zip(states, ids.squeeze(1).tolist(), chosen, strict=True)
        )
    ]
