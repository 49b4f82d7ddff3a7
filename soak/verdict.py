"""The soak's verdict, pure: from the samples of every process and the bench's request records
to a list of checks, each passed or failed. No I/O; `soak.run` gathers the inputs.

The run is split by fractions of its length, so that a short run keeps the shape of the
10-minute one (`Windows.of`):

- the first 20 % is warm-up (2 minutes of 10): caches fill, pools grow, nothing is judged;
- the *steady* part is the rest (the last 8 minutes);
- **RSS growth** of a process = median RSS over the last 5 % of the run (30 s) / median RSS
  over the first 5 % of the steady part, minus 1. Medians, so one passing spike (a burst of
  requests, a garbage collection) moves neither end;
- **file descriptors** are flat when, at rest after the load (the bench gone, idle
  connections closed: `soak.run` waits 30 s), a process holds at most `fd_slack` more than it
  did at rest just before the load (after the capacity sweep, which warms the stack up). Under
  load the count follows the connections open, which follow the requests in flight, so counts
  taken under load tell the machine's pace as much as a leak; a leaked descriptor stays at
  rest;
- **p99 drift** = p99 of the end-to-end latency of the requests meant to start in the last 20 %
  (the last 2 minutes) / p99 of those meant to start in the first steady 20 % (minutes 2 to
  4), minus 1. Only an increase fails;
- **requests lost** = every request the bench sent that did not end `ok` (429/503, errors,
  timeouts, broken streams, and those still running when the bench's drain ended).
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from client.bench.records import RequestRecord
from client.bench.stats import percentile

__all__ = [
    "AtRest",
    "Check",
    "Limits",
    "ProcessSample",
    "SoakVerdict",
    "Windows",
    "fd_check",
    "judge",
    "lost_check",
    "p99_drift_check",
    "rss_check",
]

SCHEMA = "tgi-serverless-soak/1"


@dataclass(frozen=True)
class ProcessSample:
    """One process at one moment: seconds since the load started, resident memory, open fds,
    CPU time so far."""

    t: float
    rss_bytes: int
    fds: int
    cpu_s: float = 0.0
    """CPU seconds (user + system) the process has used since it started."""


@dataclass(frozen=True)
class Span:
    start: float
    end: float

    def holds(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class Windows:
    """Where each check looks, in seconds since the load started."""

    steady_start: Span
    """The first edge of the steady part: RSS and fds are compared against it."""
    end: Span
    """The last edge of the run."""
    first_latency: Span
    """The first steady latency window."""
    last_latency: Span

    @property
    def slice_s(self) -> float:
        """The slices the steady part's latency is cut into (an edge's length: 30 s of 10 min)."""
        return self.steady_start.end - self.steady_start.start

    def slices(self) -> list[Span]:
        """The steady part, cut into slices of `slice_s`, in order."""
        start, width = self.first_latency.start, self.slice_s
        count = round((self.last_latency.end - start) / width)
        return [Span(start + i * width, start + (i + 1) * width) for i in range(count)]

    @property
    def latency_slices(self) -> int:
        """Slices in a latency window (4)."""
        return round((self.first_latency.end - self.first_latency.start) / self.slice_s)

    @classmethod
    def of(cls, seconds: float) -> Windows:
        """The windows of a run of `seconds`: 20 % warm-up, 5 % edges, 20 % latency windows."""
        warmup, edge, window = 0.2 * seconds, 0.05 * seconds, 0.2 * seconds
        return cls(
            steady_start=Span(warmup, warmup + edge),
            end=Span(seconds - edge, seconds),
            first_latency=Span(warmup, warmup + window),
            last_latency=Span(seconds - window, seconds),
        )


@dataclass(frozen=True)
class AtRest:
    """Each process read once at rest, by name: just before the load, and after it."""

    before: Mapping[str, ProcessSample]
    after: Mapping[str, ProcessSample]


@dataclass(frozen=True)
class Limits:
    max_lost: int = 0
    max_rss_growth: float = 0.05
    fd_slack: int = 4
    max_p99_drift: float = 0.10
    drift_significance: float = 0.05
    """A p99 drift over `max_p99_drift`, or a CPU growth over `max_cpu_growth`, fails only if
    the run's own 30 s slices, shuffled, shift as far less often than this: on a 2-core VM the
    p99 of a slice moves 2-3x, and the router's CPU a request ±25 %, with no trend
    (docs/reliability.md, Soak); a change inside that is no drift."""
    permutations: int = 2000
    max_cpu_growth: float = 0.10


class Check(BaseModel):
    """One line of the verdict."""

    model_config = ConfigDict(frozen=True)

    check: Literal[
        "requests lost", "RSS growth", "file descriptors", "CPU per request", "p99 drift"
    ]
    subject: str
    """What was measured: "all requests", or a process ("router", "worker-1 backend")."""
    value: float | None
    """The figure (a count, a fraction, a change in fds); None when it could not be measured."""
    limit: float
    passed: bool
    detail: str
    """The figures behind `value`, for a reader."""


class SoakVerdict(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    schema_name: str = Field(default=SCHEMA, alias="schema")
    passed: bool
    seconds: float
    capacity_rps: float
    rate_rps: float
    requests: int
    checks: list[Check]
    machine_load: tuple[float | None, float | None] = (None, None)
    """The machine's mean 1-minute load average over the first steady latency window and over
    the last one: not a check, the context of the latency figures on a shared machine."""


def lost_check(records: Sequence[RequestRecord], limits: Limits) -> Check:
    outcomes: dict[str, int] = {}
    for record in records:
        if record.outcome != "ok":
            outcomes[record.outcome] = outcomes.get(record.outcome, 0) + 1
    lost = sum(outcomes.values())
    detail = ", ".join(f"{name} {count}" for name, count in sorted(outcomes.items()))
    return Check(
        check="requests lost",
        subject="all requests",
        value=lost,
        limit=limits.max_lost,
        passed=lost <= limits.max_lost,
        detail=f"{len(records)} sent" + (f"; {detail}" if detail else ""),
    )


def rss_check(
    name: str, samples: Sequence[ProcessSample], windows: Windows, limits: Limits
) -> Check:
    first = [s.rss_bytes for s in samples if windows.steady_start.holds(s.t)]
    last = [s.rss_bytes for s in samples if windows.end.holds(s.t)]
    if not first or not last:
        return _unmeasured("RSS growth", name, limits.max_rss_growth, first, last)
    before, after = statistics.median(first), statistics.median(last)
    growth = after / before - 1
    return Check(
        check="RSS growth",
        subject=name,
        value=growth,
        limit=limits.max_rss_growth,
        passed=growth < limits.max_rss_growth,
        detail=f"{_mib(before)} -> {_mib(after)} MiB (medians)",
    )


def fd_check(name: str, samples: Sequence[ProcessSample], at_rest: AtRest, limits: Limits) -> Check:
    before, after = at_rest.before.get(name), at_rest.after.get(name)
    if before is None or after is None:
        first = [before] if before else []
        return _unmeasured(
            "file descriptors", name, limits.fd_slack, first, [after] if after else []
        )
    growth = after.fds - before.fds
    under_load = [s.fds for s in samples]
    loaded = f"; {min(under_load)} to {max(under_load)} under load" if under_load else ""
    return Check(
        check="file descriptors",
        subject=name,
        value=growth,
        limit=limits.fd_slack,
        passed=growth <= limits.fd_slack,
        detail=f"at rest {before.fds} before, {after.fds} after{loaded}",
    )


def p99_drift_check(records: Sequence[RequestRecord], windows: Windows, limits: Limits) -> Check:
    slices = _steady_slices(records, windows)
    edge = windows.latency_slices
    first = [latency for part in slices[:edge] for latency in part]
    last = [latency for part in slices[-edge:] for latency in part]
    if not first or not last:
        return _unmeasured("p99 drift", "end-to-end latency", limits.max_p99_drift, first, last)
    before, after = percentile(first, 99), percentile(last, 99)
    drift = after / before - 1
    p99s = [percentile(part, 99) if part else math.nan for part in slices]
    chance = _chance_of_shift(p99s, edge, limits.permutations)
    shown = [p99 * 1000 for p99 in p99s if not math.isnan(p99)]
    return Check(
        check="p99 drift",
        subject="end-to-end latency",
        value=drift,
        limit=limits.max_p99_drift,
        passed=_within(drift, limits.max_p99_drift, chance, limits),
        detail=(
            f"{before * 1000:.0f} ms ({len(first)} requests) -> "
            f"{after * 1000:.0f} ms ({len(last)} requests); p99 by {windows.slice_s:g} s over "
            f"the steady part: {min(shown):.0f} to {max(shown):.0f} ms; {_shuffled(chance, limits)}"
        ),
    )


def _steady_slices(records: Sequence[RequestRecord], windows: Windows) -> list[list[float]]:
    """The end-to-end latencies of the steady part, by slice (`windows.slices()`) in order."""
    spans = windows.slices()
    slices: list[list[float]] = [[] for _ in spans]
    for record in records:
        if record.outcome == "ok" and record.e2e is not None:
            index = int((record.intended - spans[0].start) // windows.slice_s)
            if 0 <= index < len(spans):
                slices[index].append(record.e2e)
    return slices


def _chance_of_shift(values: Sequence[float], edge: int, permutations: int) -> float:
    """How often the steady part's slices (`values`, one a slice, NaN for none), put in a random
    order (seeded: the same run gives the same verdict), shift their median from the first
    `edge` slices to the last `edge` at least as far as the run's own order does: how likely its
    change is from the run's ups and downs, with no trend at all. Medians, so that one slow
    slice (which alone sets a window's pooled p99) weighs as one slice."""
    observed = _median_shift(values, edge)
    rng = random.Random(0)
    order = list(values)
    reached = 0
    for _ in range(permutations):
        rng.shuffle(order)
        reached += _median_shift(order, edge) >= observed
    return reached / permutations


def _within(change: float, limit: float, chance: float, limits: Limits) -> bool:
    """The one rule of the drift checks: a change passes under its limit, or when the run's own
    slices, shuffled, shift as far often enough (`chance`) that it is no trend."""
    return change < limit or chance >= limits.drift_significance


def _shuffled(chance: float, limits: Limits) -> str:
    return f"shuffled, those slices shift as far {chance:.0%} of {limits.permutations} times"


def _median_shift(values: Sequence[float], edge: int) -> float:
    first = [value for value in values[:edge] if not math.isnan(value)]
    last = [value for value in values[-edge:] if not math.isnan(value)]
    if not first or not last:
        return -math.inf
    return statistics.median(last) / statistics.median(first) - 1


def cpu_check(
    name: str,
    samples: Sequence[ProcessSample],
    records: Sequence[RequestRecord],
    windows: Windows,
    limits: Limits,
) -> Check | None:
    """The CPU time a process spends per request, last latency window against the first one:
    the figure that grows when a process does more work for the same request (a table that
    grows, a cache that stops hitting). It moves with the pace too (a slow spell means more
    requests in flight: the router and PyWorkers then spend more per request, the shards, in
    bigger batches, less), so, as for p99, a growth over the limit fails only if the run's own
    slices, shuffled, rarely shift as far. None for a process that idles through the first
    window (under 1 % of a core): nothing to judge."""
    first = _cpu_and_requests(samples, records, windows.first_latency)
    last = _cpu_and_requests(samples, records, windows.last_latency)
    if first is None or last is None or not first[1] or not last[1]:
        return _unmeasured("CPU per request", name, limits.max_cpu_growth, [], [])
    (cpu_before, requests_before, seconds), (cpu_after, requests_after, _) = first, last
    if cpu_before < IDLE_CORE_SHARE * seconds:
        return None
    before, after = cpu_before / requests_before, cpu_after / requests_after
    growth = after / before - 1
    slices = [_cpu_per_request(samples, records, span) for span in windows.slices()]
    chance = _chance_of_shift(slices, windows.latency_slices, limits.permutations)
    return Check(
        check="CPU per request",
        subject=name,
        value=growth,
        limit=limits.max_cpu_growth,
        passed=_within(growth, limits.max_cpu_growth, chance, limits),
        detail=(
            f"{before * 1000:.2f} -> {after * 1000:.2f} ms of CPU a request; "
            f"{_shuffled(chance, limits)}"
        ),
    )


def _cpu_per_request(
    samples: Sequence[ProcessSample], records: Sequence[RequestRecord], span: Span
) -> float:
    measured = _cpu_and_requests(samples, records, span)
    if measured is None or not measured[1]:
        return math.nan
    return measured[0] / measured[1]


IDLE_CORE_SHARE = 0.01


def _cpu_and_requests(
    samples: Sequence[ProcessSample], records: Sequence[RequestRecord], span: Span
) -> tuple[float, int, float] | None:
    """CPU seconds between the first and the last sample inside `span`, the requests meant to
    start between them, and the seconds between them; None with fewer than two samples."""
    inside = [sample for sample in samples if span.holds(sample.t)]
    if len(inside) < 2:
        return None
    start, end = inside[0], inside[-1]
    requests = sum(1 for record in records if start.t <= record.intended < end.t)
    return end.cpu_s - start.cpu_s, requests, end.t - start.t


def judge(
    records: Sequence[RequestRecord],
    processes: Mapping[str, Sequence[ProcessSample]],
    at_rest: AtRest,
    *,
    seconds: float,
    capacity_rps: float,
    rate_rps: float,
    limits: Limits,
    machine_load: Sequence[tuple[float, float]] = (),
    worker_urls: Mapping[str, str] | None = None,
) -> SoakVerdict:
    """Every check of a soak of `seconds`: requests lost, then RSS and fds of each process (in
    `processes`' order), then CPU per request of each busy one, then p99 drift. The verdict
    passes when every check does; a process that vanished before the end has no samples there
    and fails its checks. `machine_load`: (time, 1-minute load average) readings, summed up in
    the verdict as context. `worker_urls`: each worker's URL by its name ("worker-1"): a
    worker's processes count the requests it served, since the router moves load between
    workers as their measured capacity moves; the others count every request."""
    windows = Windows.of(seconds)
    checks = [lost_check(records, limits)]
    checks += [rss_check(name, samples, windows, limits) for name, samples in processes.items()]
    checks += [fd_check(name, samples, at_rest, limits) for name, samples in processes.items()]
    for name, samples in processes.items():
        served = _served_by(records, (worker_urls or {}).get(name.split(" ", 1)[0]))
        if (cpu := cpu_check(name, samples, served, windows, limits)) is not None:
            checks.append(cpu)
    checks.append(p99_drift_check(records, windows, limits))
    return SoakVerdict(
        passed=all(check.passed for check in checks),
        seconds=seconds,
        capacity_rps=capacity_rps,
        rate_rps=rate_rps,
        requests=len(records),
        checks=checks,
        machine_load=(
            _mean_in(machine_load, windows.first_latency),
            _mean_in(machine_load, windows.last_latency),
        ),
    )


def _served_by(records: Sequence[RequestRecord], url: str | None) -> Sequence[RequestRecord]:
    return records if url is None else [record for record in records if record.worker == url]


def _mean_in(readings: Sequence[tuple[float, float]], span: Span) -> float | None:
    inside = [value for t, value in readings if span.holds(t)]
    return statistics.fmean(inside) if inside else None


def _unmeasured(
    check: Literal["RSS growth", "file descriptors", "CPU per request", "p99 drift"],
    subject: str,
    limit: float,
    first: Sequence[object],
    last: Sequence[object],
) -> Check:
    return Check(
        check=check,
        subject=subject,
        value=None,
        limit=limit,
        passed=False,
        detail=f"not measured: {len(first)} samples early, {len(last)} at the end",
    )


def _mib(size: float) -> str:
    return f"{size / 2**20:.1f}"
