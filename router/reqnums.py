"""Reqnums that keep increasing across router restarts, at the cost of one small write per block.

Each worker's reqnums are consecutive from where its record started: `floor()` at the time the
router first heard of it. The floor is `base + tickets issued since start`, so every reqnum the
router has issued is below `floor()`. The router persists a ceiling above the floor in blocks
(`reserve`), and a restarted router starts its base at the stored ceiling: above every number
its predecessor could have issued, without a write per ticket.

Pure logic: the write is an injected callable; `ReqnumFile` is the one that writes a file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from router.state_files import write_private

__all__ = ["DEFAULT_BLOCK", "REQNUM_FILE", "ReqnumFile", "ReqnumHighWater"]

log = logging.getLogger(__name__)

DEFAULT_BLOCK = 100_000
REQNUM_FILE = "reqnum-high-water.json"


class ReqnumHighWater:
    def __init__(
        self, *, start: int, persist: Callable[[int], None], block: int = DEFAULT_BLOCK
    ) -> None:
        if block < 1:
            raise ValueError("block must be at least 1")
        self._base = start
        self._issued = 0
        self._block = block
        self._persist = persist
        self._ceiling = start + block
        persist(self._ceiling)

    @property
    def ceiling(self) -> int:
        """Every reqnum issued by this router is below this (and it is on disk)."""
        return self._ceiling

    def floor(self) -> int:
        """Where a newly seen worker's reqnums start (its first is `floor() + 1`)."""
        return self._base + self._issued

    def issued(self) -> None:
        """Count one ticket; persist the next block before any number could pass the ceiling."""
        self._issued += 1
        if self._base + self._issued + 1 >= self._ceiling:
            self._ceiling = self._base + self._issued + self._block
            self._persist(self._ceiling)


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
