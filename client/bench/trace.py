"""Replaying a request trace: each row's arrival time, prompt length and output length.

The file is read by `common.trace` (our `arrival_s,input_tokens,output_tokens` layout, or
Azure's `TIMESTAMP,ContextTokens,GeneratedTokens`). `speed` compresses time (2 = twice as
fast); only arrivals within `limit_s` of the start are kept. Prompts are synthetic words, one
per input token; output lengths become max_new_tokens; both are kept within 1..MAX_LENGTH.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from client.bench.errors import BenchInputError
from client.bench.workload import MAX_LENGTH, RequestSpec, synthetic_prompt
from common.trace import Trace, TraceError, parse_trace

__all__ = ["TraceReplay", "load_trace", "replay"]


@dataclass(frozen=True)
class TraceReplay:
    arrivals: tuple[float, ...]
    """Seconds from the start of the replay, sorted."""
    specs: tuple[RequestSpec, ...]
    """The request of each arrival, in the same order."""
    source: str
    speed: float = 1.0


def load_trace(path: Path, *, speed: float, limit_s: float, rng: random.Random) -> TraceReplay:
    """The replay of the trace at `path`, or BenchInputError saying what is wrong and where."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchInputError(f"cannot read the trace {path}: {exc}") from None
    try:
        trace = parse_trace(text, str(path))
    except TraceError as exc:
        raise BenchInputError(str(exc)) from None
    return replay(trace, speed=speed, limit_s=limit_s, rng=rng)


def replay(trace: Trace, *, speed: float, limit_s: float, rng: random.Random) -> TraceReplay:
    """`trace` at `speed`, cut at `limit_s`, with a synthetic prompt for each request."""
    arrivals = [t / speed for t in trace.arrival_s]
    kept = [i for i, at in enumerate(arrivals) if at < limit_s]
    specs = tuple(_spec(trace.input_tokens[i], trace.output_tokens[i], rng) for i in kept)
    return TraceReplay(tuple(arrivals[i] for i in kept), specs, trace.source, speed)


def _spec(input_tokens: int, output_tokens: int, rng: random.Random) -> RequestSpec:
    prompt_len = max(1, min(MAX_LENGTH, input_tokens))
    output_len = max(1, min(MAX_LENGTH, output_tokens))
    return RequestSpec(synthetic_prompt(prompt_len, rng), prompt_len, output_len)
