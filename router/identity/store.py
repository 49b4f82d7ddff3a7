"""Where the identity book lives: in memory, and in `worker_identities.json` in the router's state
directory (mode 0600, digests only), so a router restart keeps its workers' credentials and the
join tokens not yet used.

A registration and a new join token are written before the router hands the secret out
(`save`); a worker's removal is written soon after (`forget`: it happens inside the registry,
which does no I/O). Writes happen one at a time, off the event loop, newest state last.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from pydantic import ValidationError

from router.identity.book import IdentityBook, StoredIdentities
from router.state_files import write_private

__all__ = ["IDENTITIES_FILE", "IdentityStore"]

log = logging.getLogger(__name__)

IDENTITIES_FILE = "worker_identities.json"


class IdentityStore:
    def __init__(self, state_dir: Path | None) -> None:
        self._path = state_dir / IDENTITIES_FILE if state_dir is not None else None
        self.book = IdentityBook()
        self._write_lock = asyncio.Lock()
        self._later: set[asyncio.Task[None]] = set()

    def load(self) -> None:
        """Read the stored book (blocking: call it in a thread, at start-up)."""
        if self._path is None or not self._path.exists():
            return
        try:
            stored = StoredIdentities.model_validate_json(self._path.read_bytes())
        except ValidationError as exc:
            raise RuntimeError(
                f"{self._path} is not a valid identity file ({exc.error_count()} errors); "
                "fix or move it (its workers then need new join tokens), then start again"
            ) from None
        self.book = IdentityBook(stored)

    async def mint(
        self, endpoint: str, *, now: float, ttl_s: float, worker_id: str | None = None
    ) -> str:
        """A new join token for `endpoint` (`IdentityBook.mint`), written before it is handed
        out, so a router restart still knows it."""
        token = self.book.mint(endpoint, now=now, ttl_s=ttl_s, worker_id=worker_id)
        await self.save()
        return token

    def forget(self, worker_id: str) -> None:
        """The worker left the registry: its credential goes, and is written soon."""
        if self.book.forget(worker_id):
            self.save_soon()

    def save_soon(self) -> None:
        """Write the book in the background (from the event loop's thread)."""
        task = asyncio.get_running_loop().create_task(self._save_logged())
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def settled(self) -> None:
        """Every write asked for has landed (at shutdown)."""
        while pending := [task for task in self._later if not task.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _save_logged(self) -> None:
        try:
            await self.save()
        except Exception:
            log.exception("cannot write %s", self._path)

    async def save(self) -> None:
        """Persist the book; a caller cancelled meanwhile does not cut the write short."""
        if self._path is None:
            return
        await asyncio.shield(self._write(self._path))

    async def _write(self, path: Path) -> None:
        async with self._write_lock:
            data = self.book.stored().model_dump_json(indent=1).encode()
            await asyncio.to_thread(write_private, path, data)
