"""The backend's log (`MODEL_LOG`): what its lines mean, and following it like `tail -F`.

With real TGI run as `text-generation-launcher --json-output ... >> $MODEL_LOG`, the router's
"Connected" line means the model is loaded and served; `Error: ShardCannotStart`,
`Error: DownloadError` and `Error: WebserverFailed` mean the launcher gave up.

The follower starts at the end of a log that already exists (lines from an earlier run must
never make a worker ready or failed), reads a file that appears later from its start, and
starts over when the file is rotated (new inode) or truncated. It polls; every read happens in
a worker thread, so a slow disk never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO, Any

__all__ = ["LogFollower", "LogSignal", "classify_line", "last_message"]

ERROR_MARKERS = ("Error: ShardCannotStart", "Error: DownloadError", "Error: WebserverFailed")
_CONNECTED_MARKER = '"message":"Connected","target":"text_generation_router'
MAX_MESSAGE_CHARS = 500


class LogSignal(Enum):
    LOADED = "loaded"
    FAILED = "failed"


@dataclass(frozen=True)
class LogEvent:
    signal: LogSignal
    message: str


def classify_line(line: str) -> LogEvent | None:
    """LOADED for TGI's "Connected" line, FAILED (with the line) for a launcher error, else None."""
    text = line.strip()
    for marker in ERROR_MARKERS:
        if marker in text:
            return LogEvent(LogSignal.FAILED, _message_of(text)[:MAX_MESSAGE_CHARS])
    if _CONNECTED_MARKER in text or _is_connected_record(text):
        return LogEvent(LogSignal.LOADED, "Connected")
    return None


def _is_connected_record(text: str) -> bool:
    if not text.startswith("{") or "Connected" not in text:
        return False
    try:
        record = json.loads(text)
    except ValueError:
        return False
    if not isinstance(record, dict):
        return False
    fields = record.get("fields")
    message = record.get("message", fields.get("message") if isinstance(fields, dict) else None)
    target = record.get("target")
    return (
        message == "Connected"
        and isinstance(target, str)
        and target.startswith("text_generation_router")
    )


def _message_of(text: str) -> str:
    if text.startswith("{"):
        try:
            record: Any = json.loads(text)
        except ValueError:
            return text
        if isinstance(record, dict) and isinstance(record.get("message"), str):
            return str(record["message"])
    return text


def last_message(path: str | os.PathLike[str], tail_bytes: int = 64 * 1024) -> str:
    """The message of the log's last non-empty line ("" when there is none): the reason a
    backend gave before it exited or hung. Reads only the file's tail."""
    try:
        with Path(path).open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - tail_bytes))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return _message_of(lines[-1])[:MAX_MESSAGE_CHARS] if lines else ""


class LogFollower:
    """Yields complete lines appended to `path`, surviving rotation and truncation."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        poll_s: float = 0.25,
        max_line_bytes: int = 64 * 1024,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._path = Path(path)
        self._poll_s = poll_s
        self._max_line_bytes = max_line_bytes
        self._sleep = sleep
        self._file: IO[bytes] | None = None
        self._inode: int | None = None
        self._partial = b""

    async def lines(self) -> AsyncIterator[str]:
        await asyncio.to_thread(self._open, True)
        try:
            while True:
                data = await asyncio.to_thread(self._read_available)
                if not data:
                    await self._sleep(self._poll_s)
                    continue
                for line in self._split(data):
                    yield line.decode("utf-8", errors="replace")
        finally:
            self._close()

    def _open(self, at_end: bool) -> None:
        """Open the log if it exists: at its end on the first look, else from its start."""
        try:
            handle = self._path.open("rb")
        except OSError:
            return
        self._close()
        self._file = handle
        self._inode = os.fstat(handle.fileno()).st_ino
        self._partial = b""
        if at_end:
            handle.seek(0, os.SEEK_END)

    def _read_available(self) -> bytes:
        if self._file is None:
            self._open(at_end=False)  # a log that appears after we started is new: all of it
            if self._file is None:
                return b""
        data = self._file.read(1 << 16)
        if data:
            return data
        if self._rotated_or_truncated():
            self._open(at_end=False)
            return self._file.read(1 << 16) if self._file is not None else b""
        return b""

    def _rotated_or_truncated(self) -> bool:
        try:
            status = self._path.stat()
        except OSError:
            return False  # moved away and not yet recreated: keep reading the old one
        assert self._file is not None
        return status.st_ino != self._inode or status.st_size < self._file.tell()

    def _split(self, data: bytes) -> list[bytes]:
        chunks = (self._partial + data).split(b"\n")
        self._partial = chunks.pop()
        if len(self._partial) > self._max_line_bytes:
            chunks.append(self._partial[: self._max_line_bytes])
            self._partial = b""
        return chunks

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
