"""Replaying a request trace: each row's arrival time, prompt length and output length. Pure
apart from reading the file.

Two CSV layouts are read: ours (`arrival_s,input_tokens,output_tokens`, seconds from the start;
the synthetic traces in data/traces) and Azure's public LLM inference traces
(`TIMESTAMP,ContextTokens,GeneratedTokens`, wall-clock times, counted from the first row).
`speed` compresses time (2 = twice as fast); only arrivals within `limit_s` of the start are
kept. Prompts are synthetic words, one per input token; output lengths become max_new_tokens.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from client.bench.errors import BenchInputError
from client.bench.workload import MAX_LENGTH, RequestSpec, synthetic_prompt

__all__ = ["Trace", "load_trace", "parse_trace"]

_LAYOUTS: dict[tuple[str, ...], str] = {
    ("arrival_s", "input_tokens", "output_tokens"): "seconds",
    ("timestamp", "contexttokens", "generatedtokens"): "timestamp",
}


@dataclass(frozen=True)
class Trace:
    arrivals: tuple[float, ...]
    """Seconds from the start of the replay, sorted."""
    specs: tuple[RequestSpec, ...]
    """The request of each arrival, in the same order."""
    source: str
    speed: float = 1.0


def load_trace(path: Path, *, speed: float, limit_s: float, rng: random.Random) -> Trace:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchInputError(f"cannot read the trace {path}: {exc}") from None
    return parse_trace(text, str(path), speed=speed, limit_s=limit_s, rng=rng)


def parse_trace(
    text: str, source: str, *, speed: float, limit_s: float, rng: random.Random
) -> Trace:
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise BenchInputError(f"the trace {source} is empty")
    header = tuple(cell.strip().lstrip("\ufeff").lower() for cell in rows[0])
    layout = _LAYOUTS.get(header)
    if layout is None:
        raise BenchInputError(
            f"{source}: unknown trace columns {', '.join(rows[0])}; expected "
            "arrival_s,input_tokens,output_tokens or TIMESTAMP,ContextTokens,GeneratedTokens"
        )
    parsed = (_row(row, layout, f"{source}:{number}") for number, row in enumerate(rows[1:], 2))
    entries = [entry for entry in parsed if entry is not None]
    if not entries:
        raise BenchInputError(f"the trace {source} has no requests")
    entries.sort(key=lambda entry: entry[0])
    start = entries[0][0]
    kept = [(at, i, o) for t, i, o in entries if (at := (t - start) / speed) < limit_s]
    specs = tuple(RequestSpec(synthetic_prompt(i, rng), i, o) for _, i, o in kept)
    return Trace(tuple(at for at, _, _ in kept), specs, source, speed)


def _row(row: list[str], layout: str, where: str) -> tuple[float, int, int] | None:
    if not row or all(not cell.strip() for cell in row):
        return None
    if len(row) != 3:
        raise BenchInputError(f"{where}: expected 3 columns, got {len(row)}")
    at = _time(row[0].strip(), layout, where)
    return at, _tokens(row[1], where, minimum=1), _tokens(row[2], where, minimum=1)


def _time(cell: str, layout: str, where: str) -> float:
    if layout == "seconds":
        try:
            value = float(cell)
        except ValueError:
            raise BenchInputError(f"{where}: arrival_s {cell!r} is not a number") from None
        if not (math.isfinite(value) and value >= 0):
            raise BenchInputError(f"{where}: arrival_s must be a number >= 0, got {cell}")
        return value
    whole, _, fraction = cell.partition(".")
    try:
        moment = datetime.strptime(whole, "%Y-%m-%d %H:%M:%S")
        seconds = float(f"0.{fraction}") if fraction else 0.0
    except ValueError:
        raise BenchInputError(
            f"{where}: TIMESTAMP {cell!r} is not YYYY-MM-DD HH:MM:SS[.fraction]"
        ) from None
    return moment.timestamp() + seconds


def _tokens(cell: str, where: str, minimum: int) -> int:
    try:
        value = int(cell.strip())
    except ValueError:
        raise BenchInputError(f"{where}: token count {cell.strip()!r} is not a number") from None
    if value < 0:
        raise BenchInputError(f"{where}: token count must be >= 0, got {value}")
    return max(minimum, min(MAX_LENGTH, value))
