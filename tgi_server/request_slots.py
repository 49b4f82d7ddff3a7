"""The request-slot limit: TGI's `max_concurrent_requests`, refused at once, never queued.

A request takes its slot(s) before validation and keeps them until its response is complete,
streams included; `best_of=n` takes n. When none is free the answer is an immediate 429.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tgi_server.errors import OverloadedError

__all__ = ["RequestSlots"]


class RequestSlots:
    """A counter of busy slots, used from the event loop only (no locking needed)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the slot limit must be at least 1")
        self.limit = limit
        self.in_use = 0

    @contextmanager
    def hold(self, count: int = 1) -> Iterator[None]:
        """Hold `count` slots for the block; OverloadedError when they are not all free."""
        if self.in_use + count > self.limit:
            raise OverloadedError()
        self.in_use += count
        try:
            yield
        finally:
            self.in_use -= count
