"""Workers timeline parsing, scenario figures, the HTML report and its charts."""

from __future__ import annotations

import re

import pytest

from client.bench import summary
from client.bench.records import RequestRecord
from client.bench.report import cdf, render_report, time_buckets
from client.bench.scenarios import cold_start_summary, workers_summary
from client.bench.stats import Slo, Window, summarize
from client.bench.timeline import WorkerSample, count_states
from tests.fakes.router_status import status_with


def ok_record(intended: float, ttft: float, phase: int = 0) -> RequestRecord:
    r = RequestRecord(0, intended, 3, 3, phase=phase, sent=intended, status=200, outcome="ok")
    r.tokens = [intended + ttft + 0.01 * i for i in range(3)]
    r.first_token, r.end, r.output_tokens = r.tokens[0], r.tokens[-1], 3
    return r


def test_count_states_reads_the_router_status_body() -> None:
    status = status_with({"other": ["ready"], "default": ["ready", "loading", "loading"]})
    assert count_states(status, "default") == {"loading": 2, "ready": 1}
    assert count_states(status, "other") == {"ready": 1}
    assert count_states(status, "missing") == {}


def test_workers_summary_finds_peaks_and_the_first_ready_sample() -> None:
    samples = [
        WorkerSample(0.0, {}),
        WorkerSample(0.5, {"loading": 2}),
        WorkerSample(1.0, {"loading": 1, "ready": 1}),
        WorkerSample(1.5, {}, ok=False),
    ]
    summary = workers_summary(samples)
    assert summary.peak_by_state == {"loading": 2, "ready": 1}
    assert summary.first_ready_s == 1.0
    assert summary.failed_samples == 1
    assert [point.ok for point in summary.timeline] == [True, True, True, False]


def test_cold_start_compares_the_first_request_with_the_warm_ones() -> None:
    records = [ok_record(0.0, 5.0), ok_record(6.0, 0.1, phase=1), ok_record(6.5, 0.1, phase=1)]
    summary = cold_start_summary(records)
    assert summary.cold_ttft_ms == 5000.0
    assert summary.warm_ttft.p50_ms == 100.0
    assert summary.time_to_first_success_ms == 5020.0


def test_time_buckets_and_cdf() -> None:
    records = [ok_record(0.0, 0.1), ok_record(1.0, 0.1)]
    buckets = time_buckets(records, 1.0)
    assert [n for _, n in buckets["tokens_per_s"]] == [3.0, 3.0]
    assert [n for _, n in buckets["in_flight"]] == [1.0, 1.0]
    assert cdf([0.3, 0.1, 0.2]) == [(100.0, 1 / 3), (200.0, 2 / 3), (300.0, 1.0), (300.0, 1.0)]


def summary_doc(
    records: list[RequestRecord],
    reasons: list[str],
    *,
    window: tuple[float, float] = (0.0, 2.0),
    phases: list[summary.PhaseFigures] | None = None,
    scenario: summary.ColdStart | None = None,
) -> summary.BenchSummary:
    return summary.BenchSummary(
        schema_name=summary.SCHEMA,
        version="test",
        created="now",
        target=summary.RunTarget(kind="router", url="http://127.0.0.1:1", endpoint="default"),
        load=summary.LoadDescription(
            mode="rate",
            scenario=None,
            description="closed loop",
            duration_s=2.0,
            warmup_s=0.0,
            cooldown_s=0.0,
            processes=1,
            seed=0,
        ),
        workload=summary.WorkloadDescription(prompt_len="3", output_len="3", dataset_entries=0),
        window=summary.MeasuredWindow(start_s=window[0], end_s=window[1]),
        summary=summarize(records, Window(0, 2), Slo()),
        arrivals=summary.ArrivalRates(asked_rate=None, scheduled_rate=None, achieved_rate=None),
        client=summary.ClientCheck(
            processes=1, health=[HEALTH], client_bound=bool(reasons), reasons=reasons
        ),
        phases=phases,
        scenario=scenario,
    )


HEALTH = summary.ProcessHealth(
    loop_lag_p50_ms=0.1, loop_lag_p99_ms=0.4, loop_lag_max_ms=1.0, cpu_share=0.2
)
"""As an older summary has it: no `preempted_per_s`."""


def test_the_report_is_one_self_contained_file() -> None:
    records = [ok_record(0.0, 0.1), ok_record(1.0, 0.2)]
    workers = [WorkerSample(0.0, {"ready": 1}), WorkerSample(1.0, {"ready": 2})]
    html = render_report(summary_doc(records, ["lag too high"]), records, workers)
    assert html.startswith("<!DOCTYPE html>")
    assert len(re.findall("<svg", html)) == 5
    assert "Client-bound run" in html
    assert "Client self-check" in html
    assert "<details>" in html  # the full summary is there, folded
    assert "lag too high" in html
    assert not re.search(r"<script|<link|src=", html)


def test_shifted_moves_every_time_of_a_record() -> None:
    from client.bench.document import shifted

    original = ok_record(1.0, 0.1)
    original.routed, original.headers = 1.01, 1.02
    [moved] = shifted([original], 10.0)
    moved_times = (moved.intended, moved.sent, moved.routed, moved.headers, moved.first_token)
    assert moved_times == pytest.approx((11.0, 11.0, 11.01, 11.02, 11.1))
    assert moved.tokens == pytest.approx([t + 10.0 for t in original.tokens])
    assert moved.end == pytest.approx(11.12)
    assert moved.ttft == pytest.approx(original.ttft)
    assert shifted([original], 0.0) == [original]


def test_the_report_shows_cold_start_phases_and_only_measured_latencies() -> None:
    cold, warm = ok_record(0.0, 5.0), ok_record(6.0, 0.1, phase=1)
    records = [cold, warm]
    figures = summarize(records, Window(0, 8), Slo())
    phases = [
        summary.PhaseFigures.of(0, 2.0, 0.0, figures),
        summary.PhaseFigures.of(1, 0.0, 0.0, figures),
    ]
    doc = summary_doc(
        records, [], window=(5.0, 8.0), phases=phases, scenario=cold_start_summary(records)
    )
    html = render_report(doc, records, [WorkerSample(0.0, {"loading": 1})])
    assert "Scale from zero" in html
    assert "5,000.0 ms" in html  # the cold TTFT
    assert "<h2>Phases</h2>" in html
    # both phases start with a marked line on each of the three charts over time
    assert html.count('stroke-dasharray="4 3"') == 2 * 3
    assert ">0/s</text>" in html
    assert "kept up" in html
    ttft_chart = html[html.index("TTFT and end-to-end") :]
    ttft_chart = ttft_chart[: ttft_chart.index("</svg>")]
    assert "1\u2009000" not in ttft_chart  # the 5 s cold request is out of the axis


def test_the_console_summary_spells_out_cold_start_and_what_to_do_when_client_bound() -> None:
    from client.bench.outputs import console_summary

    records = [ok_record(0.0, 5.0), ok_record(6.0, 0.1, phase=1)]
    reasons = ["process 0: event-loop lag p99 13.1 ms > 10 ms"]
    doc = summary_doc(records, reasons, scenario=cold_start_summary(records))
    text = console_summary(doc)
    assert "scale from zero: first request ok, route (waiting for a worker) –, TTFT 5000 ms" in text
    assert "warm TTFT p50 100 ms" in text
    assert "WARNING: client-bound run" in text
    assert "at most 20% of a core: other programs on this machine delayed it" in text
