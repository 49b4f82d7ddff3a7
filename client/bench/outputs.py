"""Writing a run's outputs (summary.json, records.jsonl, report.html) and its console summary."""

from __future__ import annotations

import json
from pathlib import Path

from client.bench.orchestrate import BenchOutcome
from client.bench.report import render_report
from client.bench.selfcheck import advice
from client.bench.summary import BenchSummary, ColdStart

__all__ = ["console_summary", "write_outputs"]


def write_outputs(outcome: BenchOutcome, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "summary": directory / "summary.json",
        "records": directory / "records.jsonl",
        "report": directory / "report.html",
    }
    paths["summary"].write_text(outcome.summary.dumps(), encoding="utf-8")
    with paths["records"].open("w", encoding="utf-8") as out:
        for record in outcome.records:
            out.write(json.dumps(record.to_json(), separators=(",", ":")) + "\n")
    report = render_report(outcome.summary, outcome.records, outcome.workers)
    paths["report"].write_text(report, encoding="utf-8")
    return paths


def console_summary(summary: BenchSummary) -> str:
    figures = summary.summary
    counts, rates, good = figures.requests, figures.throughput, figures.goodput
    lines = [
        f"{summary.target.kind} {summary.target.url}: {summary.load.description}",
        f"requests {counts.total}: {counts.ok} ok, {counts.overloaded} overloaded "
        f"(429/503), {counts.failed} failed",
        f"throughput {rates.requests_per_s} req/s, {rates.output_tokens_per_s} output "
        f"tokens/s; goodput {good.requests_per_s} req/s (SLO attainment {good.attainment})",
        f"{'':16}{'p50':>10}{'p90':>10}{'p95':>10}{'p99':>10}  (ms)",
    ]
    for name, latency in figures.latencies():
        cells = "".join(_cell(value) for value in latency.percentiles())
        lines.append(f"{name:<16}{cells}")
    if summary.scenario is not None:
        lines.append(_cold_start_line(summary.scenario))
    if summary.sweep_stopped is not None:
        lines.append(f"sweep stopped: {'; '.join(summary.sweep_stopped)}")
    client = summary.client
    if client.client_bound:
        lines.append("WARNING: client-bound run, figures not trustworthy:")
        lines.extend(f"  - {reason}" for reason in client.reasons)
        lines.append(f"  {advice(client.cpu_shares(), client.processes)}")
    return "\n".join(lines)


def _cold_start_line(scenario: ColdStart) -> str:
    warm = scenario.warm_ttft
    return (
        f"scale from zero: first request {scenario.cold_outcome}, route (waiting for a "
        f"worker) {_ms(scenario.cold_route_ms)}, TTFT {_ms(scenario.cold_ttft_ms)}, first "
        f"success after {_ms(scenario.time_to_first_success_ms)}; warm TTFT p50 "
        f"{_ms(warm.p50_ms)}, p99 {_ms(warm.p99_ms)}"
    )


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"


def _cell(value: float | None) -> str:
    return f"{'–':>10}" if value is None else f"{value:>10.1f}"
