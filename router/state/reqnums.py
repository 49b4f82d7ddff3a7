"""Reqnums from a shared counter: each router reserves small blocks per worker, so no number
is ever issued twice by any router, at one Redis increment per block.

A worker's PyWorker accepts a number once, and only within a window (4096) below the highest it
has seen. Routers that share a worker therefore keep their numbers close together: a block is
used only while it is young (`max_age_s`, one or two flushes), and the next one is reserved
while half of the current one is left. Numbers of a block given up (too old, the worker gone,
the router restarted) are never issued by anyone: gaps, never repeats.

Pure logic with an injected `now`: the reservations themselves are `router.state.sync`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from router.keys.reqnums import ReqnumsExhausted

__all__ = ["ReqnumBlocks", "ReqnumsExhausted"]


@dataclass
class _Block:
    next: int
    last: int
    reserved_at: float


class ReqnumBlocks:
    def __init__(self, size: int, *, max_age_s: float) -> None:
        if size < 1:
            raise ValueError("a reqnum block holds at least one number")
        self.size = size
        self._max_age_s = max_age_s
        self._current: dict[str, _Block] = {}
        self._spare: dict[str, _Block] = {}

    def has(self, worker_id: str, now: float) -> bool:
        return self._usable(worker_id, now) is not None

    def take(self, worker_id: str, now: float) -> int:
        """The worker's next reqnum; ReqnumsExhausted when none is reserved (or only old ones)."""
        block = self._usable(worker_id, now)
        if block is None:
            raise ReqnumsExhausted(f"no reqnum reserved for worker {worker_id!r} yet")
        number = block.next
        block.next += 1
        return number

    def _usable(self, worker_id: str, now: float) -> _Block | None:
        block = self._current.get(worker_id)
        if block is not None and block.next <= block.last and self._young(block, now):
            return block
        spare = self._spare.pop(worker_id, None)
        if spare is not None and self._young(spare, now):
            self._current[worker_id] = spare
            return spare
        self._current.pop(worker_id, None)
        return None

    def _young(self, block: _Block, now: float) -> bool:
        return now - block.reserved_at < self._max_age_s

    def wanted(self, worker_ids: list[str], now: float) -> list[str]:
        """Of `worker_ids`, those that need a block reserved now: no young spare one, and the
        current one missing, half used, or a third of the way to its age limit (so a spare is
        ready well before the current one is too old)."""
        wanted = []
        for worker_id in worker_ids:
            spare = self._spare.get(worker_id)
            if spare is not None and self._young(spare, now):
                continue
            block = self._current.get(worker_id)
            if (
                block is None
                or block.last - block.next < self.size // 2
                or now - block.reserved_at >= self._max_age_s / 3
            ):
                wanted.append(worker_id)
        return wanted

    def add(self, worker_id: str, last: int, now: float) -> None:
        """A block `(last - size, last]` was reserved for this router alone at `now`."""
        block = _Block(next=last - self.size + 1, last=last, reserved_at=now)
        current = self._current.get(worker_id)
        if current is None or current.next > current.last:
            self._current[worker_id] = block
        else:
            self._spare[worker_id] = block

    def forget(self, worker_id: str) -> None:
        self._current.pop(worker_id, None)
        self._spare.pop(worker_id, None)

    def known(self) -> list[str]:
        return sorted(self._current.keys() | self._spare.keys())
