"""The summary document of a run (summary.json, schema `tgi-serverless-bench/1`) as models: the
builders fill them (`client.bench.stats`, `client.bench.document`, `client.bench.scenarios`),
and the console summary, the report and `bench compare` read them by attribute.

Fields are declared in the order summary.json has always had them, so `to_json` writes the same
document as before, and a summary.json of an earlier version reads back and writes out again
byte for byte: a field a document never had (`preempted_per_s` before it was measured, the
sections a mode does not make) is left out again. Numbers from the run's settings are kept as
they were given (`AsGiven`: a rate of `0` stays `0`).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SCHEMA",
    "ArrivalRates",
    "AsGiven",
    "BenchSummary",
    "ClientCheck",
    "ColdStart",
    "Figures",
    "Goodput",
    "Latency",
    "LoadDescription",
    "MeasuredWindow",
    "PhaseFigures",
    "ProcessHealth",
    "RequestCounts",
    "RunTarget",
    "SloBounds",
    "SweepStep",
    "Throughput",
    "TimelinePoint",
    "TokenCounts",
    "WorkersSeen",
    "WorkloadDescription",
]

SCHEMA = "tgi-serverless-bench/1"

AsGiven = int | float
"""A number from the run's settings, written as it was given (`0` stays `0`, not `0.0`)."""


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True)


# -- figures (one window of requests) ----------------------------------------------------------


class Latency(_Part):
    """Milliseconds: mean and percentiles of a window's values (None when it had none)."""

    count: int
    mean_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    def percentiles(self) -> tuple[float | None, float | None, float | None, float | None]:
        """p50, p90, p95 and p99, in that order."""
        return (self.p50_ms, self.p90_ms, self.p95_ms, self.p99_ms)


class RequestCounts(_Part):
    total: int
    ok: int
    overloaded: int
    """Answered 429 or 503."""
    failed: int
    by_outcome: dict[str, int]
    failed_by_status: dict[str, int]


class Throughput(_Part):
    requests_per_s: float
    output_tokens_per_s: float
    sent_per_s: float


class TokenCounts(_Part):
    server_counted: int
    """Successful requests whose output tokens the server counted."""
    events_counted: int
    """Successful requests whose tokens were counted from their events."""
    mean_output_tokens: float | None


class SloBounds(_Part):
    ttft_ms: AsGiven | None
    itl_ms: AsGiven | None
    e2e_ms: AsGiven | None


class Goodput(_Part):
    slo: SloBounds
    requests_per_s: float
    attainment: float | None


class Figures(_Part):
    """The figures of one measurement window (`client.bench.stats.summarize`)."""

    window_s: float
    requests: RequestCounts
    ttft: Latency
    itl: Latency
    tpot: Latency
    e2e: Latency
    dispatch_delay: Latency
    route_time: Latency
    time_to_headers: Latency
    throughput: Throughput
    tokens: TokenCounts
    goodput: Goodput

    def latencies(self) -> tuple[tuple[str, Latency], ...]:
        """Each latency with its name, in the order the console and the report show them."""
        return (
            ("ttft", self.ttft),
            ("itl", self.itl),
            ("tpot", self.tpot),
            ("e2e", self.e2e),
            ("dispatch_delay", self.dispatch_delay),
            ("route_time", self.route_time),
            ("time_to_headers", self.time_to_headers),
        )


class _PhaseHead(_Part):
    phase: int
    rate: AsGiven
    """Requests/s asked of this phase (0: idle)."""
    start_s: float


class PhaseFigures(Figures, _PhaseHead):
    """One phase of an open loop: its number, rate and start, then its figures (pydantic
    declares the fields of the last base first, so the head comes first, as summary.json has
    it)."""

    @classmethod
    def of(cls, phase: int, rate: AsGiven, start_s: float, figures: Figures) -> PhaseFigures:
        return cls(phase=phase, rate=rate, start_s=start_s, **dict(figures))


class SweepStep(_Part):
    step: int
    offered_rate: float | None
    """None for step 0 (one user, closed loop)."""
    overloaded: list[str]
    """Why this step overloaded the target; empty when it kept up."""
    summary: Figures


# -- the run -----------------------------------------------------------------------------------


class RunTarget(_Part):
    kind: str
    url: str
    endpoint: str


class LoadDescription(_Part):
    mode: str
    scenario: str | None
    description: str
    duration_s: AsGiven
    warmup_s: AsGiven
    cooldown_s: AsGiven
    processes: int | Literal["auto"]
    seed: int


class WorkloadDescription(_Part):
    prompt_len: str
    output_len: str
    dataset_entries: int


class MeasuredWindow(_Part):
    start_s: float
    end_s: float


class ArrivalRates(_Part):
    """Of a one-phase open loop (None otherwise): asked, scheduled and actually sent, req/s."""

    asked_rate: AsGiven | None
    scheduled_rate: float | None
    achieved_rate: float | None


class ProcessHealth(_Part):
    """One client process's self-check (`client.bench.selfcheck.ClientHealth`)."""

    loop_lag_p50_ms: float
    loop_lag_p99_ms: float
    loop_lag_max_ms: float
    cpu_share: float
    preempted_per_s: float | None = None
    """None in summaries written before it was measured."""


class ClientCheck(_Part):
    processes: int
    health: list[ProcessHealth]
    client_bound: bool
    reasons: list[str]
    """Why the figures are not to be trusted; empty when the client kept up."""

    def cpu_shares(self) -> list[float]:
        return [process.cpu_share for process in self.health]


class ColdStart(_Part):
    """Scale from zero: the first request (cold) against the ones after it (warm)."""

    cold_outcome: str | None
    cold_ttft_ms: float | None
    cold_route_ms: float | None
    time_to_first_success_ms: float | None
    warm_ttft: Latency


class TimelinePoint(_Part):
    t: float
    states: dict[str, int]
    ok: bool


class WorkersSeen(_Part):
    """The router's workers over the run, from `GET /status` samples."""

    samples: int
    failed_samples: int
    peak_by_state: dict[str, int]
    first_ready_s: float | None
    timeline: list[TimelinePoint]


class BenchSummary(_Part):
    """summary.json. The sections after `client` are there only for the runs that make them:
    `phases` (open loops), `scenario` (scale from zero), `sweep` and `sweep_stopped` (sweeps),
    `workers` (runs that sampled the router)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    schema_name: str = Field(alias="schema")
    version: str
    created: str
    target: RunTarget
    load: LoadDescription
    workload: WorkloadDescription
    window: MeasuredWindow
    summary: Figures
    arrivals: ArrivalRates
    client: ClientCheck
    phases: list[PhaseFigures] | None = None
    scenario: ColdStart | None = None
    sweep: list[SweepStep] | None = None
    sweep_stopped: list[str] | None = None
    workers: WorkersSeen | None = None

    def with_workers(self, workers: WorkersSeen) -> BenchSummary:
        """This summary with the router's workers over the run."""
        return self.model_copy(update={"workers": workers})

    def to_json(self) -> dict[str, Any]:
        """The JSON document, under summary.json's names: every field set, but no section this
        run did not make."""
        fields = type(self).model_fields
        absent = {
            name
            for name in fields
            if not fields[name].is_required() and getattr(self, name) is None
        }
        return self.model_dump(by_alias=True, exclude_unset=True, exclude=absent)

    def dumps(self) -> str:
        """summary.json's text."""
        return json.dumps(self.to_json(), indent=2) + "\n"
