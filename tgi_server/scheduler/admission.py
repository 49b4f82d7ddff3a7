"""Which waiting requests join the running batch: TGI's router rules for a padded model, pure.

`next_batch` pops entries from the front of the queue while the new batch fits both budgets:
the prefill costs `(rows + 1) * longest prompt` tokens and must stay within the prefill budget;
that plus every entry's `max_new_tokens` must stay within what the running batch leaves of the
total token budget. Entries whose client went away are skipped and counted. `bounds` is the
waiting ratio: new requests interrupt a running batch only when enough of them wait
(`waiting_served_ratio` times its size) or when it has run `max_waiting_tokens` steps since the
last time someone joined.

One rule differs from TGI, on purpose: when nothing is running, the first live entry is always
admitted, so a request that could never fit (budgets set below one request) is still served
instead of waiting forever.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

__all__ = ["AdmissionBounds", "BatchLimits", "Candidate", "batch_tokens", "bounds", "next_batch"]


class Candidate(Protocol):
    @property
    def input_length(self) -> int: ...

    @property
    def max_new_tokens(self) -> int: ...

    def is_cancelled(self) -> bool: ...


C = TypeVar("C", bound=Candidate)


@dataclass(frozen=True)
class BatchLimits:
    """TGI's router flags of the same names."""

    max_batch_prefill_tokens: int = 4096
    max_batch_total_tokens: int = 16_000
    max_batch_size: int | None = None
    waiting_served_ratio: float = 0.3
    max_waiting_tokens: int = 20


@dataclass(frozen=True)
class AdmissionBounds:
    min_size: int | None
    max_size: int | None
    token_budget: int
    force_first: bool = False


def batch_tokens(entries: Sequence[Candidate]) -> int:
    """What a batch of `entries` may hold at most: padded prompts plus every new token."""
    if not entries:
        return 0
    longest = max(entry.input_length for entry in entries)
    return len(entries) * longest + sum(entry.max_new_tokens for entry in entries)


def bounds(
    limits: BatchLimits,
    running: Sequence[Candidate],
    steps_since_join: int,
    *,
    running_tokens: int | None = None,
) -> AdmissionBounds:
    """How many may join a batch running `running`, `steps_since_join` steps after the last join.

    `running_tokens` is `batch_tokens(running)`, when the caller keeps it already."""
    if not running:
        return AdmissionBounds(None, limits.max_batch_size, limits.max_batch_total_tokens, True)
    waited_enough = steps_since_join >= limits.max_waiting_tokens
    min_size = None if waited_enough else math.floor(len(running) * limits.waiting_served_ratio)
    max_size = None if limits.max_batch_size is None else limits.max_batch_size - len(running)
    if running_tokens is None:
        running_tokens = batch_tokens(running)
    budget = limits.max_batch_total_tokens - running_tokens
    return AdmissionBounds(min_size, max_size, budget)


def next_batch(
    queue: deque[C], limits: BatchLimits, admission: AdmissionBounds
) -> tuple[list[C], int]:
    """The entries to prefill now (taken off `queue`) and how many cancelled ones were dropped."""
    dropped = _drop_cancelled_head(queue)
    if not queue or admission.max_size == 0:
        return [], dropped
    if admission.min_size is not None and len(queue) < admission.min_size:
        return [], dropped
    batch: list[C] = []
    longest = 0
    decode_tokens = 0
    while queue and (admission.max_size is None or len(batch) < admission.max_size):
        entry = queue.popleft()
        if entry.is_cancelled():
            dropped += 1
            continue
        longest = max(longest, entry.input_length)
        prefill_tokens = (len(batch) + 1) * longest
        total = prefill_tokens + decode_tokens + entry.max_new_tokens
        fits = prefill_tokens <= limits.max_batch_prefill_tokens and total <= admission.token_budget
        if not fits and not (admission.force_first and not batch):
            queue.appendleft(entry)
            break
        decode_tokens += entry.max_new_tokens
        batch.append(entry)
    if admission.min_size is not None and len(batch) < admission.min_size:
        queue.extendleft(reversed(batch))
        return [], dropped
    return batch, dropped


def _drop_cancelled_head(queue: deque[C]) -> int:
    dropped = 0
    while queue and queue[0].is_cancelled():
        queue.popleft()
        dropped += 1
    return dropped
