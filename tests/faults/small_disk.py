"""A small disk for the router's state directory: a size-limited tmpfs, mounted for one case and
filled on purpose, so that every write to it fails with ENOSPC as on a full disk. Needs root
and `mount`; unmounted on exit."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

__all__ = ["fill", "small_disk", "small_disk_unavailable", "stored_files"]


def small_disk_unavailable() -> str | None:
    """Why a tmpfs cannot be mounted here (None when it can)."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "`mount` is not installed"
    return None


@contextlib.contextmanager
def small_disk(path: Path, size_kib: int) -> Iterator[Path]:
    """A tmpfs of `size_kib` KiB mounted at `path` (mode 0700, as the router makes its state
    directory), unmounted at the end."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size_kib}k,mode=0700"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    """Write a file in `directory` until the disk refuses (ENOSPC); the file, to delete."""
    filler = directory / "filler"
    chunk = b"\0" * 4096
    with filler.open("wb", buffering=0) as handle:
        while True:
            try:
                handle.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return filler


def stored_files(directory: Path) -> dict[str, bytes]:
    """Every file in `directory` but the filler, by name, with its bytes."""
    return {
        entry.name: entry.read_bytes()
        for entry in sorted(directory.iterdir())
        if entry.is_file() and entry.name != "filler"
    }
