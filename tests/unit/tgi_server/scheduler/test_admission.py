"""TGI's admission rules for the running batch: budgets, waiting ratio, cancelled entries."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from tgi_server.scheduler.admission import (
    AdmissionBounds,
    BatchLimits,
    batch_tokens,
    bounds,
    next_batch,
)


@dataclass
class Entry:
    input_length: int
    max_new_tokens: int
    cancelled: bool = False

    def is_cancelled(self) -> bool:
        return self.cancelled


entries = st.builds(
    Entry,
    st.integers(1, 64),
    st.integers(1, 64),
    st.booleans(),
)
limits_strategy = st.builds(
    BatchLimits,
    max_batch_prefill_tokens=st.integers(1, 512),
    max_batch_total_tokens=st.integers(1, 2048),
    max_batch_size=st.none() | st.integers(1, 8),
)


@given(st.lists(entries, max_size=20), limits_strategy, st.booleans())
def test_a_batch_keeps_order_fits_its_budgets_and_loses_nobody(
    waiting: list[Entry], limits: BatchLimits, force_first: bool
) -> None:
    queue = deque(waiting)
    admission = AdmissionBounds(
        None, limits.max_batch_size, limits.max_batch_total_tokens, force_first
    )
    batch, dropped = next_batch(queue, limits, admission)
    assert all(not entry.cancelled for entry in batch)
    assert len(batch) + dropped + len(queue) == len(waiting)
    live = [entry for entry in waiting if not entry.cancelled]
    assert batch == live[: len(batch)]  # first come, first served
    if limits.max_batch_size is not None:
        assert len(batch) <= limits.max_batch_size
    if len(batch) > 1 or (batch and not force_first):
        longest = max(entry.input_length for entry in batch)
        assert len(batch) * longest <= limits.max_batch_prefill_tokens
        assert batch_tokens(batch) <= limits.max_batch_total_tokens
    if force_first and live:
        assert batch  # nothing running: the first live request is always served


def test_the_prefill_budget_counts_padding_to_the_longest_prompt() -> None:
    queue = deque([Entry(10, 1), Entry(30, 1), Entry(5, 1)])
    limits = BatchLimits(max_batch_prefill_tokens=60, max_batch_total_tokens=10_000)
    batch, _ = next_batch(queue, limits, AdmissionBounds(None, None, 10_000))
    assert [entry.input_length for entry in batch] == [10, 30]  # 3 * 30 > 60
    assert [entry.input_length for entry in queue] == [5]


def test_the_total_budget_counts_every_new_token() -> None:
    queue = deque([Entry(4, 100), Entry(4, 100)])
    batch, _ = next_batch(queue, BatchLimits(), AdmissionBounds(None, None, 150))
    assert len(batch) == 1
    assert len(queue) == 1


def test_too_few_waiting_do_not_interrupt_a_running_batch() -> None:
    limits = BatchLimits(waiting_served_ratio=1.2, max_waiting_tokens=20)
    running = [Entry(4, 8) for _ in range(5)]
    admission = bounds(limits, running, steps_since_join=3)
    assert admission.min_size == 6
    queue = deque([Entry(4, 8) for _ in range(5)])
    assert next_batch(queue, limits, admission) == ([], 0)
    assert len(queue) == 5  # put back, in order
    waited = bounds(limits, running, steps_since_join=20)
    assert waited.min_size is None
    assert len(next_batch(queue, limits, waited)[0]) == 5


def test_bounds_leave_the_running_batch_its_tokens_and_size() -> None:
    limits = BatchLimits(max_batch_total_tokens=1000, max_batch_size=4)
    running = [Entry(10, 90), Entry(20, 80)]
    admission = bounds(limits, running, steps_since_join=1)
    assert admission.token_budget == 1000 - (2 * 20 + 170)
    assert admission.max_size == 2
    assert not admission.force_first
    assert bounds(limits, [], 0).force_first


def test_cancelled_entries_are_dropped_and_counted() -> None:
    queue = deque([Entry(4, 4, cancelled=True), Entry(4, 4), Entry(4, 4, cancelled=True)])
    batch, dropped = next_batch(queue, BatchLimits(), AdmissionBounds(None, None, 10_000))
    assert len(batch) == 1
    assert dropped == 2
    assert not queue
