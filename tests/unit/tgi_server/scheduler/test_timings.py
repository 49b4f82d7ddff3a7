"""TGI's per-batch histograms as plain counters: buckets, sums and the `le` ladder."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tgi_server.scheduler.timings import (
    DURATION_BUCKETS,
    NEXT_SIZE_BUCKETS,
    BatchTimings,
    CumulativeHistogram,
)


def test_tgis_bucket_ladders() -> None:
    assert len(DURATION_BUCKETS) == 35
    assert DURATION_BUCKETS[0] == 0.00015
    assert DURATION_BUCKETS[1] == 0.00015 * 1.5
    assert NEXT_SIZE_BUCKETS[0] == 1.0
    assert NEXT_SIZE_BUCKETS[-1] == 1024.0
    assert len(NEXT_SIZE_BUCKETS) == 1024


def test_a_value_on_a_bound_counts_in_that_bucket() -> None:
    histogram = CumulativeHistogram((1.0, 2.0, 4.0))
    for value in (1.0, 1.5, 4.0, 9.0):
        histogram.observe(value)
    assert histogram.cumulative() == [("1.0", 1), ("2.0", 2), ("4.0", 3), ("+Inf", 4)]
    assert histogram.total == 15.5


@given(st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), max_size=50))
def test_the_ladder_never_decreases_and_ends_at_the_count(values: list[float]) -> None:
    histogram = CumulativeHistogram(DURATION_BUCKETS)
    for value in values:
        histogram.observe(value)
    counts = [count for _, count in histogram.cumulative()]
    assert counts == sorted(counts)
    assert counts[-1] == histogram.count == len(values)


def test_a_step_records_each_phase_under_its_method() -> None:
    timings = BatchTimings()
    timings.step("decode", forward=0.5, decode=0.25, filter=0.0, inference=1.0)
    decode = {phase: timings.durations[(phase, "decode")] for phase in ("forward", "inference")}
    assert (decode["forward"].total, decode["inference"].total) == (0.5, 1.0)
    assert timings.durations[("filter", "decode")].count == 1
    assert all(h.count == 0 for (_, method), h in timings.durations.items() if method == "prefill")
