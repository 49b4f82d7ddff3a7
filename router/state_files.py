"""Files in the router's state directory, each replaced whole: a crash leaves the old version
or the new one, never half of either. Blocking: call from a thread, or at start-up."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_private"]


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically, readable by its owner only (mode 0600, in a
    directory created with mode 0700): state files may hold keys."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temp_name, 0o600)
        os.replace(temp_name, path)
    except BaseException:
        os.unlink(temp_name)
        raise
