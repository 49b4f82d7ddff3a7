"""Soft session affinity: remember which worker a session key last went to, in bounded memory.

A least-recently-used map from session key to worker id; the oldest entries go first once
`capacity` keys are held, so a client inventing a new key per request costs nothing lasting.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["SessionAffinity"]


class SessionAffinity:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._workers: OrderedDict[tuple[str, str], str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._workers)

    def worker_for(self, endpoint: str, session: str) -> str | None:
        worker_id = self._workers.get((endpoint, session))
        if worker_id is not None:
            self._workers.move_to_end((endpoint, session))
        return worker_id

    def remember(self, endpoint: str, session: str, worker_id: str) -> None:
        if self._capacity <= 0:
            return
        self._workers[(endpoint, session)] = worker_id
        self._workers.move_to_end((endpoint, session))
        while len(self._workers) > self._capacity:
            self._workers.popitem(last=False)
