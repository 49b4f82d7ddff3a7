"""One self-contained HTML report of a run: headline figures, latency distributions, throughput
and concurrency over time, the router's workers over time, and sweep curves. Inline SVG only:
it opens offline, with no scripts and no external files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape

from client.bench.records import RequestRecord
from client.bench.selfcheck import advice
from client.bench.summary import (
    BenchSummary,
    ClientCheck,
    ColdStart,
    Figures,
    MeasuredWindow,
    PhaseFigures,
    SweepStep,
)
from client.bench.timeline import WorkerSample
from common.svg import Chart, Series, figure

__all__ = ["cdf", "render_report", "time_buckets"]

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;"
    "text-align:right}th{background:#f4f4f4}figure{display:inline-block;margin:8px}"
    ".warn{background:#fee;border:1px solid #c00;padding:8px 12px;color:#900}"
    "pre{background:#f8f8f8;padding:8px;overflow:auto}"
    "summary{cursor:pointer;font-weight:600;margin:1em 0}"
    ".note{color:#555;font-size:90%;max-width:1300px}"
)
_STATE_COLOURS = {
    "ready": "#2ca02c",
    "busy": "#1f77b4",
    "benchmarking": "#9467bd",
    "loading": "#ff7f0e",
    "starting": "#e6c229",
    "draining": "#8c564b",
    "cold": "#17becf",
    "stopped": "#7f7f7f",
    "error": "#d62728",
}
"""Serving states first (at the bottom of the workers chart), those on their way up or down
above them, each in its own colour."""


def cdf(
    values: Sequence[float], scale: float = 1000.0, points: int = 200
) -> list[tuple[float, float]]:
    """(value x scale, cumulative share) at up to `points` evenly spaced ranks."""
    ordered = sorted(values)
    if not ordered:
        return []
    step = max(1, len(ordered) // points)
    chosen = [*range(0, len(ordered), step), len(ordered) - 1]
    return [(ordered[i] * scale, (i + 1) / len(ordered)) for i in chosen]


def time_buckets(
    records: Sequence[RequestRecord], bucket: float
) -> dict[str, list[tuple[float, float]]]:
    """Per-bucket token rate, completion rate, failure rate and in-flight requests."""
    end = max((r.end or r.intended for r in records), default=0.0)
    count = int(end / bucket) + 1
    tokens, done, failed = [0] * count, [0] * count, [0] * count
    for r in records:
        for t in r.tokens:
            tokens[min(int(t / bucket), count - 1)] += 1
        if r.end is not None:
            slot = min(int(r.end / bucket), count - 1)
            if r.outcome == "ok":
                done[slot] += 1
            else:
                failed[slot] += 1
    starts = [i * bucket for i in range(count)]
    return {
        "tokens_per_s": [(t, n / bucket) for t, n in zip(starts, tokens, strict=True)],
        "requests_per_s": [(t, n / bucket) for t, n in zip(starts, done, strict=True)],
        "failures_per_s": [(t, n / bucket) for t, n in zip(starts, failed, strict=True)],
        "in_flight": [(t, float(_in_flight(records, t))) for t in starts],
    }


def _in_flight(records: Sequence[RequestRecord], t: float) -> int:
    return sum(1 for r in records if r.sent is not None and r.sent <= t < (r.end or t + 1))


def render_report(
    summary: BenchSummary, records: Sequence[RequestRecord], workers: Sequence[WorkerSample]
) -> str:
    title = f"tgi-serverless bench: {summary.target.kind} {summary.target.url}"
    ok = [r for r in records if r.outcome == "ok" and _measured(r, summary.window)]
    end = max([r.end or r.intended for r in records] + [w.t for w in workers] + [1.0])
    marks = _phase_marks(summary.phases)
    body = [
        f"<h1>{escape(title)}</h1>",
        f"<p>{escape(summary.created)} · {escape(summary.load.description)}</p>",
        _warning(summary.client),
        _headline(summary.summary),
        *_cold_start(summary.scenario),
        *_phases(summary.phases),
        "<h2>Latency distributions</h2>",
        "<p class='note'>Requests in the measurement window (warm-up, cool-down and a "
        "scale-from-zero request left out); logarithmic time axis. Gaps of 0 (tokens read "
        "together) are below the axis: the ITL curve starts at their share.</p>",
        figure(
            Chart(
                "TTFT and end-to-end latency (CDF)",
                [
                    Series("TTFT", cdf([r.ttft for r in ok if r.ttft is not None])),
                    Series("end-to-end", cdf([r.e2e for r in ok if r.e2e is not None])),
                ],
                "milliseconds (log)",
                "share of requests",
                log_x=True,
                y_range=(0.0, 1.0),
            )
        ),
        figure(
            Chart(
                "Inter-token latency (CDF of every gap)",
                [Series("ITL", cdf([g for r in ok for g in r.gaps()]))],
                "milliseconds (log)",
                "share of gaps",
                log_x=True,
                y_range=(0.0, 1.0),
            )
        ),
        "<h2>Over time</h2>",
        "<p class='note'>Every request of the run, on one clock (seconds from its start)"
        f"{', with the router' + chr(39) + 's workers below' if workers else ''}.</p>",
        *_time_charts(records, end, marks),
        *_worker_chart(workers, end, marks),
        *_sweep_charts(summary.sweep),
        *_client(summary.client),
        "<details><summary>Full summary (summary.json)</summary>",
        f"<pre>{escape(json.dumps(summary.to_json(), indent=2))}</pre></details>",
    ]
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}"
        f"</title><style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )


def _warning(client: ClientCheck) -> str:
    if not client.reasons:
        return ""
    items = "".join(f"<li>{escape(r)}</li>" for r in client.reasons)
    headline = "<b>Client-bound run: figures are not trustworthy.</b>"
    return f"<div class='warn'>{headline}<ul>{items}</ul></div>"


def _headline(figures: Figures) -> str:
    rows = []
    for name, latency in figures.latencies():
        cells = "".join(_cell(value) for value in latency.percentiles())
        rows.append(f"<tr><th>{name}</th>{cells}<td>{latency.count}</td></tr>")
    head = "<tr><th></th><th>p50 ms</th><th>p90</th><th>p95</th><th>p99</th><th>n</th></tr>"
    t, g, c = figures.throughput, figures.goodput, figures.requests
    lines = (
        f"<p>{t.requests_per_s} req/s · {t.output_tokens_per_s} output tokens/s · "
        f"goodput {g.requests_per_s} req/s (attainment {g.attainment}) · requests "
        f"{c.total}: {c.ok} ok, {c.overloaded} overloaded (429/503), "
        f"{c.failed} failed</p>"
    )
    return f"{lines}<table>{head}{''.join(rows)}</table>"


def _cell(value: object) -> str:
    return f"<td>{'–' if value is None else value}</td>"


def _measured(record: RequestRecord, window: MeasuredWindow) -> bool:
    return window.start_s <= record.intended < window.end_s


def _phase_marks(phases: Sequence[PhaseFigures] | None) -> list[tuple[float, str]]:
    """Where each phase of a scenario starts, labelled with its rate (none for one phase)."""
    if phases is None or len(phases) < 2:
        return []
    return [(p.start_s, f"{p.rate:g}/s") for p in phases]


def _time_charts(
    records: Sequence[RequestRecord], end: float, marks: Sequence[tuple[float, str]] = ()
) -> list[str]:
    buckets = time_buckets(records, bucket=max(0.5, end / 60))
    return [
        figure(
            Chart(
                "Output tokens per second",
                [Series("output tokens/s", buckets["tokens_per_s"], step=True)],
                "seconds",
                "tokens/s",
                x_range=(0.0, end),
                x_marks=marks,
            )
        ),
        figure(
            Chart(
                "Requests",
                [
                    Series("in flight", buckets["in_flight"], step=True),
                    Series("completed/s", buckets["requests_per_s"], step=True),
                    Series("failed/s", buckets["failures_per_s"], step=True),
                ],
                "seconds",
                "requests",
                x_range=(0.0, end),
                x_marks=marks,
            )
        ),
    ]


def _worker_chart(
    workers: Sequence[WorkerSample], end: float, marks: Sequence[tuple[float, str]] = ()
) -> list[str]:
    if not workers:
        return []
    seen = {s for w in workers for s in w.states}
    states = [s for s in _STATE_COLOURS if s in seen] + sorted(seen - set(_STATE_COLOURS))
    series = [
        Series(
            state,
            [(w.t, float(w.states.get(state, 0))) for w in workers],
            step=True,
            colour=_STATE_COLOURS.get(state),
        )
        for state in states
    ]
    chart = figure(
        Chart(
            "Router's workers by state (stacked)",
            series,
            "seconds",
            "workers",
            x_range=(0.0, end),
            stacked=True,
            integer_y=True,
            x_marks=marks,
        )
    )
    return [chart]


def _cold_start(scenario: ColdStart | None) -> list[str]:
    if scenario is None:
        return []
    warm = scenario.warm_ttft
    rows = [
        ("first request", scenario.cold_outcome),
        ("its route time (waiting for a worker)", _ms(scenario.cold_route_ms)),
        ("its TTFT (cold)", _ms(scenario.cold_ttft_ms)),
        ("time to first success", _ms(scenario.time_to_first_success_ms)),
        ("warm TTFT p50 / p99", f"{_ms(warm.p50_ms)} / {_ms(warm.p99_ms)}"),
    ]
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return ["<h2>Scale from zero</h2>", f"<table>{cells}</table>"]


def _phases(phases: Sequence[PhaseFigures] | None) -> list[str]:
    if phases is None or len(phases) < 2:
        return []
    head = (
        "<tr><th>phase</th><th>from s</th><th>asked req/s</th><th>requests</th><th>ok</th>"
        "<th>429/503</th><th>failed</th><th>TTFT p50 ms</th><th>TTFT p99 ms</th></tr>"
    )
    rows = []
    for phase in phases:
        counts = phase.requests
        cells = [
            phase.phase,
            round(phase.start_s, 1),
            phase.rate,
            counts.total,
            counts.ok,
            counts.overloaded,
            counts.failed,
            phase.ttft.p50_ms,
            phase.ttft.p99_ms,
        ]
        rows.append("<tr>" + "".join(_cell(c) for c in cells) + "</tr>")
    return ["<h2>Phases</h2>", f"<table>{head}{''.join(rows)}</table>"]


def _client(client: ClientCheck) -> list[str]:
    head = (
        "<tr><th>process</th><th>loop lag p50 ms</th><th>p99</th><th>max</th><th>CPU</th>"
        "<th>preempted/s</th></tr>"
    )
    rows = [
        f"<tr><td>{i}</td>{_cell(h.loop_lag_p50_ms)}{_cell(h.loop_lag_p99_ms)}"
        f"{_cell(h.loop_lag_max_ms)}<td>{h.cpu_share:.0%}</td>"
        f"{_cell(h.preempted_per_s)}</tr>"
        for i, h in enumerate(client.health)
    ]
    verdict = (
        f"client-bound ({advice(client.cpu_shares(), client.processes)})"
        if client.reasons
        else "kept up"
    )
    return [
        "<h2>Client self-check</h2>",
        f"<p>{escape(verdict)}</p><table>{head}{''.join(rows)}</table>",
    ]


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f} ms"


def _sweep_charts(sweep: Sequence[SweepStep] | None) -> list[str]:
    """Latency and throughput against the load of each step: the offered rate of open-loop
    steps, the rate the single user of step 0 sent."""
    if not sweep:
        return []
    loads = [(s.offered_rate or s.summary.throughput.sent_per_s, s.summary) for s in sweep]
    steps = sorted(((rate, fig) for rate, fig in loads if rate), key=lambda step: step[0])
    p50 = [(rate, fig.ttft.p50_ms) for rate, fig in steps if fig.ttft.p50_ms]
    p99 = [(rate, fig.ttft.p99_ms) for rate, fig in steps if fig.ttft.p99_ms]
    latency = [Series("TTFT p50", p50), Series("TTFT p99", p99)]
    throughput = [
        Series("completed req/s", [(r, f.throughput.requests_per_s) for r, f in steps]),
        Series("goodput req/s", [(r, f.goodput.requests_per_s) for r, f in steps]),
    ]
    return [
        "<h2>Sweep</h2>",
        "<p class='note'>One point per step (step 0: one user at a time).</p>",
        figure(
            Chart(
                "Latency against load", latency, "req/s sent (log)", "ms", log_x=True, markers=True
            )
        ),
        figure(
            Chart(
                "Throughput against load",
                throughput,
                "req/s sent (log)",
                "req/s",
                log_x=True,
                markers=True,
            )
        ),
    ]
