"""Reqnums that keep increasing across router restarts, at the cost of one small write per block,
made off the event loop.

Each worker's reqnums are consecutive from where its record started: `floor()` at the time the
router first heard of it. The floor is `base + tickets issued since start`, so every reqnum the
router has handed out is at most `floor()`. The router keeps a ceiling on disk above the floor,
raised a block (`reqnum_block`) at a time, and a restarted router starts its base at the stored
ceiling: above every number its predecessor could have handed out, without a write per ticket.

The next block is reserved early, when half a block is left below the ceiling, and written by
`submit` (in the router, a writer thread): the write (with its fsyncs, ~10 ms) never holds up
the event loop. The ceiling counts only once its write has landed, so no number is handed out
at or above a ceiling that is not on disk. Should numbers reach the ceiling while its successor
is still being written (half a block of tickets during one write), `issued()` waits for that
write: a pause, never a number beyond what is stored.

Pure logic: the write and where it runs are injected; `ReqnumFile` is the write to a file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from router.state_files import write_private

__all__ = [
    "DEFAULT_BLOCK",
    "REQNUM_FILE",
    "ReqnumFile",
    "ReqnumHighWater",
    "ReqnumsExhausted",
    "Submit",
]

log = logging.getLogger(__name__)

DEFAULT_BLOCK = 100_000
REQNUM_FILE = "reqnum-high-water.json"

Submit = Callable[[Callable[[], None]], "Future[None]"]


class ReqnumsExhausted(Exception):
    """No reqnum is reserved for this worker right now (routers on shared state reserve them
    in blocks, `router.state.reqnums`): the worker is not ready on this router until its next
    block lands, which wakes the requests waiting for one."""


"""Runs a write elsewhere (e.g. `ThreadPoolExecutor.submit`) and returns its future."""


class ReqnumHighWater:
    """`persist(ceiling)` stores a ceiling (blocking). Without `submit`, each block is written
    in line (at start-up, in tests, in the simulator); with it, in the background. The first
    ceiling is written in line by the constructor: build this off the event loop."""

    def __init__(
        self,
        *,
        start: int,
        persist: Callable[[int], None],
        block: int = DEFAULT_BLOCK,
        submit: Submit | None = None,
    ) -> None:
        if block < 1:
            raise ValueError("block must be at least 1")
        self._base = start
        self._issued = 0
        self._block = block
        self._persist = persist
        self._submit = submit
        self._headroom = max(block // 2, 1)
        self._writing: Future[None] | None = None
        self._reserved = start + block
        persist(self._reserved)
        self._ceiling = self._reserved

    @property
    def ceiling(self) -> int:
        """Every reqnum handed out by this router is below this, and it is on disk."""
        return self._ceiling

    def floor(self) -> int:
        """Where a newly seen worker's reqnums start (its first is `floor() + 1`)."""
        return self._base + self._issued

    def issued(self) -> None:
        """Count one ticket (whose reqnum is at most the new `floor()`): on return, that number
        is below the stored ceiling, and the next block is on its way once it is near."""
        self._issued += 1
        if self._writing is not None and self._writing.done():
            self._landed(self._writing)
        floor = self._base + self._issued
        if floor >= self._ceiling:
            self._catch_up(floor)
        if self._writing is None and self._ceiling - floor <= self._headroom:
            self._reserve(max(self._ceiling, floor + 1) + self._block)

    def _reserve(self, ceiling: int) -> None:
        self._reserved = ceiling
        if self._submit is None:
            self._persist(ceiling)
            self._ceiling = ceiling
        else:
            self._writing = self._submit(lambda: self._persist(ceiling))

    def _landed(self, writing: Future[None]) -> bool:
        """Take in a finished write: True if it stored its ceiling; a failed one is logged and
        tried again at once."""
        self._writing = None
        error = writing.exception()
        if error is not None:
            log.error("could not store the reqnum ceiling %d: %s", self._reserved, error)
            return False
        self._ceiling = self._reserved
        return True

    def _catch_up(self, floor: int) -> None:
        """The numbers reached the stored ceiling: wait for the write in flight, or write now."""
        if self._writing is not None:
            writing = self._writing
            writing.exception()  # waits for it
            self._landed(writing)
        if floor >= self._ceiling:
            ceiling = floor + self._block
            self._persist(ceiling)  # raises if the disk refuses, as the ticket must not go out
            self._reserved = self._ceiling = ceiling


class ReqnumFile:
    """The stored ceiling, in the state directory, written atomically."""

    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / REQNUM_FILE

    def load(self) -> int:
        """The stored ceiling, or 0 when there is none (or it is unreadable, which is logged)."""
        try:
            value = json.loads(self._path.read_text())["ceiling"]
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable %s: %s", self._path, exc)
            return 0
        return value if isinstance(value, int) and value >= 0 else 0

    def store(self, ceiling: int) -> None:
        write_private(self._path, json.dumps({"ceiling": ceiling}).encode())
