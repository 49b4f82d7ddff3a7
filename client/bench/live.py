"""The live terminal view: one status line, rewritten in place on a terminal (every second) or
appended (every 5 s) when stderr is a file or pipe, and written once more, final, at the end."""

from __future__ import annotations

import time
from typing import TextIO

from client.bench.progress import Progress
from client.bench.stats import percentile

__all__ = ["LiveView", "status_line"]


def status_line(progress: Progress, elapsed: float, planned: float, label: str) -> str:
    rate = progress.done / elapsed if elapsed > 0 else 0.0
    tokens = progress.tokens / elapsed if elapsed > 0 else 0.0
    recent = list(progress.recent_ttft)
    ttft = "TTFT –"
    if recent:
        p50, p99 = percentile(recent, 50) * 1000, percentile(recent, 99) * 1000
        ttft = f"TTFT p50 {p50:.0f} ms p99 {p99:.0f} ms"
    return (
        f"{label} {elapsed:5.1f}/{planned:.0f}s  sent {progress.sent}  in flight "
        f"{progress.in_flight}  ok {progress.ok}  429/503 {progress.overloaded}  failed "
        f"{progress.failed}  {rate:.1f} req/s  {tokens:.0f} tok/s  {ttft}"
    )


class LiveView:
    def __init__(self, stream: TextIO, *, enabled: bool = True) -> None:
        self._stream = stream
        self._enabled = enabled
        self._tty = stream.isatty()
        self._every = 1.0 if self._tty else 5.0
        self._last = 0.0
        self._started = time.monotonic()
        self._label = ""
        self._planned = 0.0
        self._progress: Progress | None = None
        self._shown: tuple[int, int] | None = None

    def start(self, label: str, planned_s: float) -> None:
        self._label, self._planned = label, planned_s
        self._started = time.monotonic()
        self._last = 0.0
        self._progress = self._shown = None

    def update(self, progress: Progress) -> None:
        self._progress = progress
        now = time.monotonic()
        if self._enabled and now - self._last >= self._every:
            self._last = now
            self._show(progress, now)

    def finish(self) -> None:
        """Show the last counts (unless the last line already did), then end the line."""
        if not self._enabled:
            return
        progress = self._progress
        if progress is not None and self._shown != (progress.sent, progress.done):
            self._show(progress, time.monotonic())
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()

    def _show(self, progress: Progress, now: float) -> None:
        self._shown = (progress.sent, progress.done)
        line = status_line(progress, now - self._started, self._planned, self._label)
        if self._tty:
            self._stream.write("\r\x1b[2K" + line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()
