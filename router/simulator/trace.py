"""Request traces: `arrival_s,input_tokens,output_tokens` CSV, or Azure's LLM trace format read
as it is (`TIMESTAMP,ContextTokens,GeneratedTokens`, times relative to the first row).

`time_scale` multiplies every arrival time: 0.5 replays twice as fast (twice the load).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["Trace", "TraceError", "load_trace", "parse_trace"]

NATIVE = ("arrival_s", "input_tokens", "output_tokens")
AZURE = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


class TraceError(ValueError):
    """A trace file that cannot be read; the message names the line."""


@dataclass(frozen=True)
class Trace:
    """Requests in arrival order, as parallel lists (fast to replay)."""

    name: str
    arrival_s: list[float]
    input_tokens: list[int]
    output_tokens: list[int]

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def duration_s(self) -> float:
        return self.arrival_s[-1] if self.arrival_s else 0.0

    @property
    def mean_output_tokens(self) -> float:
        return sum(self.output_tokens) / len(self) if self.arrival_s else 0.0


def load_trace(path: Path, *, time_scale: float = 1.0) -> Trace:
    try:
        with path.open(newline="", encoding="utf-8") as stream:
            return parse_trace(csv.reader(stream), name=path.stem, time_scale=time_scale)
    except OSError as exc:
        raise TraceError(f"cannot read trace {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise TraceError(f"trace {path} is not UTF-8 text") from None


def parse_trace(rows: Iterator[list[str]], *, name: str, time_scale: float = 1.0) -> Trace:
    try:
        return _parse(rows, name, time_scale)
    except csv.Error as exc:
        raise TraceError(f"{name}: not a CSV file: {exc}") from None


def _parse(rows: Iterator[list[str]], name: str, time_scale: float) -> Trace:
    if time_scale <= 0:
        raise TraceError("time scale must be > 0")
    header = tuple(cell.strip() for cell in next(rows, []))
    parse_time: Callable[[str], float]
    if header == NATIVE:
        parse_time = _seconds
    elif header == AZURE:
        parse_time = _timestamp
    else:
        raise TraceError(f"{name}: header must be {','.join(NATIVE)} or {','.join(AZURE)}")
    arrivals: list[float] = []
    inputs: list[int] = []
    outputs: list[int] = []
    for line, row in enumerate(rows, start=2):
        if not row:
            continue
        when, n_in, n_out = _fields(name, line, row, parse_time)
        arrivals.append(when)
        inputs.append(n_in)
        outputs.append(n_out)
    return _normalised(name, arrivals, inputs, outputs, time_scale)


def _fields(
    name: str, line: int, row: list[str], parse_time: Callable[[str], float]
) -> tuple[float, int, int]:
    if len(row) != 3:
        raise TraceError(f"{name} line {line}: expected 3 fields, got {len(row)}")
    try:
        when = parse_time(row[0].strip())
        n_in, n_out = int(row[1]), int(row[2])
    except ValueError as exc:
        raise TraceError(f"{name} line {line}: {exc}") from None
    if n_in < 0 or n_out < 0 or when != when:  # NaN check included
        raise TraceError(f"{name} line {line}: token counts and times must be >= 0")
    return float(when), n_in, n_out


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0 or value == float("inf"):
        raise ValueError(f"arrival_s must be a finite number >= 0, not {text!r}")
    return value


def _timestamp(text: str) -> float:
    stamp, _, fraction = text.partition(".")
    base = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").timestamp()
    return base + (float(f"0.{fraction}") if fraction else 0.0)


def _normalised(
    name: str, arrivals: list[float], inputs: list[int], outputs: list[int], time_scale: float
) -> Trace:
    if not arrivals:
        raise TraceError(f"{name}: the trace has no requests")
    order = sorted(range(len(arrivals)), key=arrivals.__getitem__)
    start = arrivals[order[0]]
    return Trace(
        name=name,
        arrival_s=[(arrivals[i] - start) * time_scale for i in order],
        input_tokens=[inputs[i] for i in order],
        output_tokens=[outputs[i] for i in order],
    )
