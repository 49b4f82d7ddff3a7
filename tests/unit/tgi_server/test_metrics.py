"""The batch metrics' hand-written exposition text is what prometheus_client would write."""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from tgi_server.metrics import DURATION_HELP, _batch_text
from tgi_server.scheduler.base import SchedulerStats
from tgi_server.scheduler.timings import BATCH_DURATIONS, METHODS, CumulativeHistogram


class ReferenceCollector:
    """The same families built with prometheus_client's own types: the oracle."""

    def __init__(self, stats: SchedulerStats, max_batch_total_tokens: int) -> None:
        self.stats = stats
        self.max_batch_total_tokens = max_batch_total_tokens

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        families = {
            "count": ("tgi_batch_inference_count", "Forward passes"),
            "success": ("tgi_batch_inference_success", "Forward passes that succeeded"),
            "failure": ("tgi_batch_inference_failure", "Forward passes that failed"),
        }
        built = {k: CounterMetricFamily(n, t, labels=["method"]) for k, (n, t) in families.items()}
        for method, total in stats.forwards.items():
            failed = stats.failed_forwards.get(method, 0)
            built["count"].add_metric([method], total)
            built["success"].add_metric([method], total - failed)
            built["failure"].add_metric([method], failed)
        yield from built.values()
        concat = CounterMetricFamily(
            "tgi_batch_concat", "New requests joined to a running batch", labels=["reason"]
        )
        for reason, total in stats.concats.items():
            concat.add_metric([reason], total)
        yield concat
        yield GaugeMetricFamily(
            "tgi_batch_current_max_tokens",
            "Most tokens the running batch may come to hold",
            value=stats.batch_max_tokens,
        )
        yield GaugeMetricFamily(
            "tgi_batch_max_total_tokens",
            "Token budget of the running batch",
            value=self.max_batch_total_tokens,
        )
        for phase in BATCH_DURATIONS:
            family = HistogramMetricFamily(
                f"tgi_batch_{phase}_duration", DURATION_HELP[phase], labels=["method"]
            )
            for method in METHODS:
                add(family, stats.timings.durations[(phase, method)], [method])
            yield family
        sizes = HistogramMetricFamily("tgi_batch_next_size", "Requests in each new batch")
        add(sizes, stats.timings.next_size, [])
        yield sizes
        joins = HistogramMetricFamily(
            "tgi_batch_concat_duration",
            "Time joining a new batch to the running one",
            labels=["method"],
        )
        add(joins, stats.timings.concat, ["decode"])
        yield joins


def add(family: HistogramMetricFamily, histogram: CumulativeHistogram, labels: list[str]) -> None:
    family.add_metric(labels, histogram.cumulative(), sum_value=histogram.total)


def reference_text(stats: SchedulerStats, max_batch_total_tokens: int) -> str:
    registry = CollectorRegistry()
    registry.register(ReferenceCollector(stats, max_batch_total_tokens))
    return generate_latest(registry).decode()


counts = st.integers(0, 3_000_000)
seconds = st.floats(0.0, 120.0, allow_nan=False)


@st.composite
def scheduler_stats(draw: st.DrawFn) -> SchedulerStats:
    stats = SchedulerStats()
    for method in METHODS:
        total = draw(counts)
        stats.forwards[method] = total
        stats.failed_forwards[method] = draw(st.integers(0, total))
    for reason in stats.concats:
        stats.concats[reason] = draw(counts)
    stats.batch_max_tokens = draw(counts)
    timings = stats.timings
    for histogram in (*timings.durations.values(), timings.concat):
        for value in draw(st.lists(seconds, max_size=20)):
            histogram.observe(value)
    for size in draw(st.lists(st.integers(1, 2000), max_size=40)):
        timings.next_size.observe(float(size))
    if draw(st.booleans()):  # counts past a million: Go writes them with an exponent
        timings.next_size.counts[0] += 1_500_000
        timings.next_size.count += 1_500_000
    return stats


@settings(max_examples=60, deadline=None)
@given(scheduler_stats(), counts)
def test_the_batch_text_is_what_prometheus_client_writes(
    stats: SchedulerStats, max_batch_total_tokens: int
) -> None:
    assert _batch_text(stats, max_batch_total_tokens) == reference_text(
        stats, max_batch_total_tokens
    )


def test_an_untouched_scheduler_renders_too() -> None:
    assert _batch_text(SchedulerStats(), 16_000) == reference_text(SchedulerStats(), 16_000)
