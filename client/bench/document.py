"""The summary document of a run (`client.bench.summary.BenchSummary`), from its records:
figures for the measurement window and each phase, arrival rates, client health. Pure; every
output (JSON, console, HTML) is made from it. Records of runs made one after another are moved
onto one clock first (`shifted`)."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence

from client.bench.config import BenchConfig
from client.bench.plan import LoadPlan
from client.bench.records import RequestRecord
from client.bench.selfcheck import ClientHealth, verdict
from client.bench.stats import Window, summarize
from client.bench.summary import (
    SCHEMA,
    ArrivalRates,
    BenchSummary,
    ClientCheck,
    ColdStart,
    LoadDescription,
    MeasuredWindow,
    PhaseFigures,
    RunTarget,
    SweepStep,
    WorkloadDescription,
)
from protocol.version import VERSION

__all__ = [
    "SCHEMA",
    "build_document",
    "measurement_window",
    "phase_summaries",
    "shifted",
    "sweep_document",
]


def shifted(records: list[RequestRecord], dt: float) -> list[RequestRecord]:
    """`records` with every time moved by `dt` seconds (onto another run's clock)."""
    if abs(dt) < 1e-12:
        return records
    return [_shift(r, dt) for r in records]


def _shift(record: RequestRecord, dt: float) -> RequestRecord:
    def moved(t: float | None) -> float | None:
        return None if t is None else t + dt

    return dataclasses.replace(
        record,
        intended=record.intended + dt,
        sent=moved(record.sent),
        routed=moved(record.routed),
        headers=moved(record.headers),
        first_token=moved(record.first_token),
        end=moved(record.end),
        tokens=[t + dt for t in record.tokens],
    )


def measurement_window(
    config: BenchConfig, plan: LoadPlan, records: Sequence[RequestRecord], offset: float
) -> Window:
    """The measurement window; `offset` is where the run's clock zero lies on the shared one."""
    if plan.kind == "cold":
        warm = [r.intended for r in records if r.phase > 0]
        start = min(warm, default=offset)
        return Window(start, start + plan.duration)
    return Window(offset + config.warmup, offset + plan.duration - config.cooldown)


def phase_summaries(
    config: BenchConfig, plan: LoadPlan, records: Sequence[RequestRecord], offset: float
) -> list[PhaseFigures]:
    if plan.kind == "cold":
        return []
    summaries = []
    for number, ((begin, end), phase) in enumerate(
        zip(plan.phase_windows(), plan.phases, strict=True)
    ):
        mine = [r for r in records if r.phase == number]
        figures = summarize(mine, Window(offset + begin, offset + end), config.slo)
        summaries.append(PhaseFigures.of(number, phase.rate, offset + begin, figures))
    return summaries


def build_document(
    config: BenchConfig,
    plan: LoadPlan,
    records: Sequence[RequestRecord],
    health: list[ClientHealth],
    window: Window,
    *,
    phases: list[PhaseFigures] | None = None,
    scenario: ColdStart | None = None,
) -> BenchSummary:
    """The summary of one run of `plan`, with its phases (open loops) and its cold start
    (scale from zero) when given."""
    figures = summarize(records, window, config.slo)
    dispatch_p99 = figures.dispatch_delay.p99_ms if plan.kind != "closed" else None
    return BenchSummary(
        schema_name=SCHEMA,
        version=VERSION,
        created=_now(),
        target=_target(config),
        load=_load_description(config, _load_text(config, plan), plan.duration),
        workload=_workload(config),
        window=_window(window),
        summary=figures,
        arrivals=_arrivals(plan, records),
        client=_client_check(health, None if dispatch_p99 is None else dispatch_p99 / 1000),
        phases=phases,
        scenario=scenario,
    )


def sweep_document(
    config: BenchConfig,
    plan: LoadPlan,
    records: Sequence[RequestRecord],
    health: list[ClientHealth],
    steps: list[SweepStep],
    processes: int,
) -> BenchSummary:
    """The summary of a sweep: the figures of its best step that kept up (the most goodput),
    every step, and why it stopped climbing (its first overloaded step). `plan` is step 0's;
    `processes` the most a step used."""
    kept = [s for s in steps if not s.overloaded]
    best = max(kept, key=lambda s: s.summary.goodput.requests_per_s)
    end = max((r.end or 0.0 for r in records), default=0.0)
    refined = f", then {config.sweep.refine} refining" if config.sweep.refine else ""
    text = (
        f"sweep: 1 user, then open loop at x{config.sweep.factor:g} steps until overload"
        f"{refined} ({len(steps) - 1} steps, best: step {best.step})"
    )
    return BenchSummary(
        schema_name=SCHEMA,
        version=VERSION,
        created=_now(),
        target=_target(config),
        load=_load_description(config, text, end),
        workload=_workload(config),
        window=_window(Window(0.0, max(end, 1e-3))),
        summary=best.summary,
        arrivals=_arrivals(plan, records),
        client=_client_check(health, None, processes),
        sweep=steps,
        sweep_stopped=_why_it_stopped(steps),
    )


def _why_it_stopped(steps: list[SweepStep]) -> list[str]:
    """Why the sweep stopped climbing: its first overloaded step's reasons."""
    return next((step.overloaded for step in steps if step.overloaded), ["reached the last step"])


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _target(config: BenchConfig) -> RunTarget:
    target = config.target
    return RunTarget(kind=target.kind, url=target.url, endpoint=target.endpoint)


def _workload(config: BenchConfig) -> WorkloadDescription:
    return WorkloadDescription(
        prompt_len=config.workload.prompt_len.describe(),
        output_len=config.workload.output_len.describe(),
        dataset_entries=len(config.workload.dataset),
    )


def _window(window: Window) -> MeasuredWindow:
    return MeasuredWindow(start_s=round(window.start, 3), end_s=round(window.end, 3))


def _load_text(config: BenchConfig, plan: LoadPlan) -> str:
    if plan.kind == "closed":
        return f"closed loop, {plan.users} concurrent users for {plan.seconds:g} s"
    if config.trace is not None:
        return (
            f"trace replay of {config.trace.source} at {config.trace.speed:g}x: "
            f"{len(config.trace.arrivals)} requests in {plan.duration:g} s"
        )
    steps = ", ".join(f"{p.rate:g} req/s for {p.seconds:g} s" for p in plan.phases)
    arrivals = "Poisson" if config.burstiness == 1 else f"gamma(burstiness={config.burstiness:g})"
    first = "one cold request, then " if plan.kind == "cold" else ""
    return f"open loop ({arrivals}): {first}{steps}"


def _load_description(config: BenchConfig, text: str, duration_s: float) -> LoadDescription:
    return LoadDescription(
        mode=config.mode,
        scenario=config.scenario if config.mode == "scenario" else None,
        description=text,
        duration_s=duration_s,
        warmup_s=config.warmup,
        cooldown_s=config.cooldown,
        processes=config.processes or "auto",
        seed=config.seed,
    )


def _client_check(
    health: list[ClientHealth], dispatch_p99_s: float | None, processes: int | None = None
) -> ClientCheck:
    reasons = verdict(health, dispatch_p99_s)
    return ClientCheck(
        processes=len(health) if processes is None else processes,
        health=[h.figures() for h in health],
        client_bound=bool(reasons),
        reasons=reasons,
    )


def _arrivals(plan: LoadPlan, records: Sequence[RequestRecord]) -> ArrivalRates:
    """Asked, scheduled and achieved (actual sends) arrival rates of a one-phase open loop."""
    if plan.kind == "closed" or len(plan.phases) != 1:
        return ArrivalRates(asked_rate=None, scheduled_rate=None, achieved_rate=None)
    phase = 1 if plan.kind == "cold" else 0
    mine = [r for r in records if r.phase == phase]
    return ArrivalRates(
        asked_rate=plan.phases[0].rate,
        scheduled_rate=_rate(sorted(r.intended for r in mine)),
        achieved_rate=_rate(sorted(r.sent for r in mine if r.sent is not None)),
    )


def _rate(times: Sequence[float]) -> float | None:
    if len(times) < 2 or times[-1] <= times[0]:
        return None
    return round((len(times) - 1) / (times[-1] - times[0]), 4)
