"""The summary document of a run, from its records: figures for the measurement window and
each phase, arrival rates, client health. Pure; every output (JSON, console, HTML) is made from
it. Records of runs made one after another are moved onto one clock first (`shifted`)."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from typing import Any

from client.bench.config import BenchConfig
from client.bench.plan import LoadPlan
from client.bench.records import RequestRecord
from client.bench.selfcheck import ClientHealth, verdict
from client.bench.stats import Window, summarize
from protocol.version import VERSION

__all__ = ["SCHEMA", "build_document", "measurement_window", "phase_summaries", "shifted"]

SCHEMA = "tgi-serverless-bench/1"


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
) -> list[dict[str, Any]]:
    if plan.kind == "cold":
        return []
    summaries = []
    for number, ((begin, end), phase) in enumerate(
        zip(plan.phase_windows(), plan.phases, strict=True)
    ):
        mine = [r for r in records if r.phase == number]
        figures = summarize(mine, Window(offset + begin, offset + end), config.slo)
        summaries.append(
            {"phase": number, "rate": phase.rate, "start_s": offset + begin, **figures}
        )
    return summaries


def build_document(
    config: BenchConfig,
    plan: LoadPlan,
    records: Sequence[RequestRecord],
    health: list[ClientHealth],
    window: Window,
) -> dict[str, Any]:
    figures = summarize(records, window, config.slo)
    dispatch_p99 = figures["dispatch_delay"]["p99_ms"] if plan.kind != "closed" else None
    reasons = verdict(health, None if dispatch_p99 is None else dispatch_p99 / 1000)
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "target": {
            "kind": config.target.kind,
            "url": config.target.url,
            "endpoint": config.target.endpoint,
        },
        "load": _load_description(config, plan),
        "workload": {
            "prompt_len": config.workload.prompt_len.describe(),
            "output_len": config.workload.output_len.describe(),
            "dataset_entries": len(config.workload.dataset),
        },
        "window": {"start_s": round(window.start, 3), "end_s": round(window.end, 3)},
        "summary": figures,
        "arrivals": _arrivals(plan, records),
        "client": {
            "processes": len(health),
            "health": [h.to_json() for h in health],
            "client_bound": bool(reasons),
            "reasons": reasons,
        },
    }


def _load_description(config: BenchConfig, plan: LoadPlan) -> dict[str, Any]:
    if plan.kind == "closed":
        text = f"closed loop, {plan.users} concurrent users for {plan.seconds:g} s"
    elif config.trace is not None:
        text = (
            f"trace replay of {config.trace.source} at {config.trace.speed:g}x: "
            f"{len(config.trace.arrivals)} requests in {plan.duration:g} s"
        )
    else:
        steps = ", ".join(f"{p.rate:g} req/s for {p.seconds:g} s" for p in plan.phases)
        arrivals = (
            "Poisson" if config.burstiness == 1 else f"gamma(burstiness={config.burstiness:g})"
        )
        first = "one cold request, then " if plan.kind == "cold" else ""
        text = f"open loop ({arrivals}): {first}{steps}"
    return {
        "mode": config.mode,
        "scenario": config.scenario if config.mode == "scenario" else None,
        "description": text,
        "duration_s": plan.duration,
        "warmup_s": config.warmup,
        "cooldown_s": config.cooldown,
        "processes": config.processes or "auto",
        "seed": config.seed,
    }


def _arrivals(plan: LoadPlan, records: Sequence[RequestRecord]) -> dict[str, Any]:
    """Asked, scheduled and achieved (actual sends) arrival rates of a one-phase open loop."""
    if plan.kind == "closed" or len(plan.phases) != 1:
        return {"asked_rate": None, "scheduled_rate": None, "achieved_rate": None}
    phase = 1 if plan.kind == "cold" else 0
    mine = [r for r in records if r.phase == phase]
    return {
        "asked_rate": plan.phases[0].rate,
        "scheduled_rate": _rate(sorted(r.intended for r in mine)),
        "achieved_rate": _rate(sorted(r.sent for r in mine if r.sent is not None)),
    }


def _rate(times: Sequence[float]) -> float | None:
    if len(times) < 2 or times[-1] <= times[0]:
        return None
    return round((len(times) - 1) / (times[-1] - times[0]), 4)
