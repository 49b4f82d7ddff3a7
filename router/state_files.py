"""Files in the router's state directory, each replaced whole and durably: a crash (of the
process or of the machine) leaves the old version or the new one, never half of either, never
an empty file and never none. Blocking: call from a thread, or at start-up.

The new bytes go to a temporary file in the same directory, which is synced to disk before it
is renamed over the old file (a rename that reached the disk before the data could otherwise
leave an empty file under the name); then the directory is synced, so the rename itself
survives a power cut.

A write that fails raises `StateUnwritable` (an OSError, and the router's 503 `unavailable`):
the stored file is left as it was, and a request that waited on the write is told to retry.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from router.errors import StateUnwritable

__all__ = ["write_private"]


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically and durably, readable by its owner only (mode
    0600, in a directory created with mode 0700): state files may hold keys. When the new
    bytes cannot be written or synced, the error is raised, the old file is left as it was and
    no temporary file is left behind; one syncing the directory after the rename is raised too
    (the new file is in place, but may not survive a power cut). Raised as `StateUnwritable`."""
    try:
        _replace(path, data)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise StateUnwritable(f"the router could not store {path.name}: {reason}") from exc


def _replace(path: Path, data: bytes) -> None:
    directory = path.parent
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if created:
        _sync_directory(directory.parent)  # the new directory's own entry
    descriptor, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), 0o600)
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        os.unlink(temp_name)
        raise
    _sync_directory(directory)


def _sync_directory(directory: Path) -> None:
    """Make the directory's entries (a rename, a new file) durable."""
    descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
