"""Request traces: when each request arrived, its prompt length and its output length.

Two CSV layouts are read: ours, `arrival_s,input_tokens,output_tokens` (seconds from the start;
the synthetic traces in data/traces), and Azure's public LLM inference traces as they are,
`TIMESTAMP,ContextTokens,GeneratedTokens` (wall-clock times, read as UTC whatever the local
zone). Header names are matched without regard to case, after a byte-order mark. Rows are
sorted by arrival and times count from the first one; blank rows are skipped; token counts are
kept as they are (>= 0). Pure: the caller reads the file and passes its text.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath

__all__ = ["AZURE_COLUMNS", "COLUMNS", "Trace", "TraceError", "parse_trace"]

COLUMNS = ("arrival_s", "input_tokens", "output_tokens")
AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
_EXPECTED = f"{','.join(COLUMNS)} or {','.join(AZURE_COLUMNS)}"


class TraceError(ValueError):
    """A trace that cannot be read; the message names the source, and the line of a bad row."""


@dataclass(frozen=True)
class Trace:
    """Requests in arrival order, as parallel lists (fast to replay)."""

    source: str
    """Where the rows came from: a file's path, or a label."""
    arrival_s: list[float]
    """Seconds from the first arrival, sorted."""
    input_tokens: list[int]
    output_tokens: list[int]

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def name(self) -> str:
        """The source's file name without its extension: a short label for tables and plots."""
        return PurePath(self.source).stem

    @property
    def duration_s(self) -> float:
        return self.arrival_s[-1] if self.arrival_s else 0.0

    @property
    def mean_output_tokens(self) -> float:
        return sum(self.output_tokens) / len(self) if self.arrival_s else 0.0

    def scaled(self, factor: float) -> Trace:
        """The same requests with every arrival time multiplied by `factor` (> 0): 0.5 replays
        twice as fast."""
        if not factor > 0:
            raise ValueError(f"a time scale must be above 0, got {factor}")
        times = [t * factor for t in self.arrival_s]
        return Trace(self.source, times, self.input_tokens, self.output_tokens)


def parse_trace(text: str, source: str) -> Trace:
    """The trace in `text` (a whole CSV file), or TraceError saying what is wrong and where."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise TraceError(f"{source}: not a CSV file: {exc}") from None
    if not rows:
        raise TraceError(f"the trace {source} is empty")
    parse_time = _time_reader(rows[0], source)
    entries = [
        _entry(row, parse_time, f"{source}:{line}")
        for line, row in enumerate(rows[1:], start=2)
        if any(cell.strip() for cell in row)
    ]
    if not entries:
        raise TraceError(f"the trace {source} has no requests")
    entries.sort(key=lambda entry: entry[0])
    start = entries[0][0]
    return Trace(
        source,
        [at - start for at, _, _ in entries],
        [n_in for _, n_in, _ in entries],
        [n_out for _, _, n_out in entries],
    )


def _time_reader(header: list[str], source: str) -> Callable[[str, str], float]:
    names = tuple(cell.strip().lstrip("\ufeff").lower() for cell in header)
    if names == tuple(name.lower() for name in COLUMNS):
        return _seconds
    if names == tuple(name.lower() for name in AZURE_COLUMNS):
        return _timestamp
    raise TraceError(f"{source}: unknown trace columns {', '.join(header)}; expected {_EXPECTED}")


def _entry(
    row: list[str], parse_time: Callable[[str, str], float], where: str
) -> tuple[float, int, int]:
    if len(row) != 3:
        raise TraceError(f"{where}: expected 3 columns, got {len(row)}")
    return parse_time(row[0].strip(), where), _tokens(row[1], where), _tokens(row[2], where)


def _seconds(cell: str, where: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise TraceError(f"{where}: arrival_s {cell!r} is not a number") from None
    if not (math.isfinite(value) and value >= 0):
        raise TraceError(f"{where}: arrival_s must be a number >= 0, got {cell}")
    return value


def _timestamp(cell: str, where: str) -> float:
    whole, _, fraction = cell.partition(".")
    try:
        moment = datetime.strptime(whole, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        if fraction and not fraction.isdigit():
            raise ValueError(fraction)
        seconds = float(f"0.{fraction}") if fraction else 0.0
    except ValueError:
        raise TraceError(
            f"{where}: TIMESTAMP {cell!r} is not YYYY-MM-DD HH:MM:SS[.fraction]"
        ) from None
    return moment.timestamp() + seconds


def _tokens(cell: str, where: str) -> int:
    try:
        value = int(cell.strip())
    except ValueError:
        raise TraceError(f"{where}: token count {cell.strip()!r} is not a number") from None
    if value < 0:
        raise TraceError(f"{where}: token count must be >= 0, got {value}")
    return value
