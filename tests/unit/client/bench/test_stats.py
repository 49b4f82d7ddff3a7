"""Percentiles, windows, failures against goodput, and throughput from records."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.bench.records import Outcome, RequestRecord
from client.bench.stats import Slo, Window, percentile, summarize
from client.bench.summary import RequestCounts


def record(
    intended: float,
    *,
    ttft: float = 0.1,
    gap: float = 0.02,
    tokens: int = 5,
    outcome: Outcome = "ok",
    status: int | None = 200,
    sent_late: float = 0.0,
) -> RequestRecord:
    r = RequestRecord(index=0, intended=intended, prompt_len=4, max_new_tokens=tokens)
    r.sent = intended + sent_late
    r.status = status
    r.outcome = outcome
    if outcome == "ok":
        r.tokens = [intended + ttft + i * gap for i in range(tokens)]
        r.first_token = r.tokens[0]
        r.end = r.tokens[-1]
        r.output_tokens = tokens
    else:
        r.end = intended + 0.01
    return r


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert math.isnan(percentile([], 50))


@given(st.lists(st.floats(-1e6, 1e6), min_size=1), st.floats(0, 100))
def test_percentile_lies_between_min_and_max(values: list[float], p: float) -> None:
    assert min(values) <= percentile(values, p) <= max(values)


def test_latency_counts_from_the_intended_start_not_the_send() -> None:
    late = record(1.0, ttft=0.1, sent_late=0.5)
    late.tokens = [t + 0.5 for t in late.tokens]
    late.first_token, late.end = late.tokens[0], late.tokens[-1]
    summary = summarize([late], Window(0, 10), Slo())
    assert summary.ttft.p50_ms == pytest.approx(600)
    assert summary.dispatch_delay.p50_ms == pytest.approx(500)


def test_warmup_and_cooldown_requests_are_left_out() -> None:
    records = [record(0.5, ttft=9.0), record(5.0, ttft=0.1), record(9.5, ttft=9.0)]
    summary = summarize(records, Window(1.0, 9.0), Slo())
    assert summary.requests.total == 1
    assert summary.ttft.p50_ms == pytest.approx(100)


def test_itl_is_every_gap_and_tpot_uses_the_server_count() -> None:
    r = record(1.0, gap=0.02, tokens=5)
    summary = summarize([r], Window(0, 10), Slo())
    assert summary.itl.count == 4
    assert summary.itl.p50_ms == pytest.approx(20)
    r.output_tokens = 9  # a chunk carried several tokens: TPOT follows the server's count
    assert r.tpot() == pytest.approx(0.08 / 8)


def test_overloaded_answers_are_counted_apart_and_count_against_goodput() -> None:
    records = [
        record(1.0),
        record(2.0, outcome="overloaded", status=429),
        record(3.0, outcome="error", status=500),
        record(4.0, outcome="timeout", status=None),
    ]
    summary = summarize(records, Window(0, 10), Slo(ttft=1.0))
    assert summary.requests == RequestCounts(
        total=4,
        ok=1,
        overloaded=1,
        failed=2,
        by_outcome={"error": 1, "ok": 1, "overloaded": 1, "timeout": 1},
        failed_by_status={"429": 1, "500": 1, "None": 1},
    )
    assert summary.goodput.attainment == 0.25
    assert summary.ttft.count == 1


def test_goodput_needs_every_slo_met() -> None:
    fast, slow_gap = record(1.0, ttft=0.05, gap=0.01), record(2.0, ttft=0.05, gap=0.2)
    summary = summarize([fast, slow_gap], Window(0, 10), Slo(ttft=0.1, itl=0.05))
    assert summary.goodput.requests_per_s == pytest.approx(0.1)
    assert summary.goodput.attainment == 0.5


@given(
    st.lists(
        st.tuples(
            st.floats(0, 12),
            st.floats(0.001, 3),
            st.sampled_from(["ok", "ok", "error", "overloaded"]),
        ),
        max_size=30,
    ),
    st.floats(0.05, 2),
)
def test_goodput_never_exceeds_throughput(
    specs: list[tuple[float, float, Outcome]], ttft_slo: float
) -> None:
    records = [record(t, ttft=ttft, outcome=outcome) for t, ttft, outcome in specs]
    summary = summarize(records, Window(1, 9), Slo(ttft=ttft_slo))
    assert summary.goodput.requests_per_s <= summary.throughput.requests_per_s
    attainment = summary.goodput.attainment
    assert attainment is None or 0 <= attainment <= 1


def test_token_throughput_counts_tokens_that_arrived_in_the_window() -> None:
    records = [record(float(t), tokens=10, gap=0.01) for t in range(10)]
    summary = summarize(records, Window(0, 10), Slo())
    assert summary.throughput.output_tokens_per_s == pytest.approx(10.0)
    assert summary.tokens.server_counted == 10
