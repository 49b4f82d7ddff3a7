"""Pure policies: comparison verdicts, sweep overload, client self-check, the down-watch."""

from __future__ import annotations

import pytest

from client.bench.compare import compare
from client.bench.selfcheck import ClientHealth, advice, verdict
from client.bench.summary import Figures
from client.bench.sweep import SweepPolicy, between, overload_reasons
from client.bench.watchdog import DownWatch
from tests.unit.client.bench.documents import figures


def regressions(a: Figures, b: Figures, **kw: float) -> list[str]:
    threshold = kw.pop("threshold", 0.10)
    return [c.metric for c in compare(a, b, threshold, **kw) if c.regression]


def test_identical_runs_do_not_regress() -> None:
    assert regressions(figures(), figures()) == []


def test_slower_ttft_beyond_the_threshold_regresses() -> None:
    assert regressions(figures(), figures(ttft_p50=115)) == ["ttft.p50_ms"]
    assert regressions(figures(), figures(ttft_p50=105)) == []


def test_less_throughput_regresses_and_more_does_not() -> None:
    worse = regressions(figures(), figures(rps=8))
    assert worse == [
        "throughput.requests_per_s",
        "throughput.output_tokens_per_s",
        "goodput.requests_per_s",
    ]
    assert regressions(figures(), figures(rps=20)) == []


def test_sub_millisecond_latency_noise_never_regresses() -> None:
    assert regressions(figures(ttft_p50=0.2), figures(ttft_p50=0.6)) == []
    assert regressions(figures(ttft_p50=0.2), figures(ttft_p50=0.6), min_ms=0.0) == ["ttft.p50_ms"]


def test_missing_figures_are_not_regressions() -> None:
    assert regressions(figures(ttft_p50=None), figures(ttft_p50=500.0)) == []
    assert regressions(figures(ttft_p50=500.0), figures(ttft_p50=None)) == []


def step(completed: float, ttft: float, ok: int = 10, total: int = 10) -> Figures:
    return figures(ttft, completed, total=total, ok=ok)


def test_a_step_that_keeps_up_is_not_overloaded() -> None:
    assert overload_reasons(step(9.5, 60), 10, 50, SweepPolicy()) == []
    assert overload_reasons(step(9.5, 60, ok=9), 10, 50, SweepPolicy()) == []  # one is no trend


@pytest.mark.parametrize(
    ("summary", "reason"),
    [
        (step(5, 60), "completed 5.00 req/s of 10.00"),
        (step(10, 60, ok=8), "2 of 10 requests failed"),
        (step(10, 60, ok=18, total=20), "2 of 20 requests failed"),
        (step(10, 400), "median TTFT 400 ms"),
    ],
)
def test_overload_signals(summary: Figures, reason: str) -> None:
    assert any(reason in r for r in overload_reasons(summary, 10, 50, SweepPolicy()))


def test_sweep_rates_grow_geometrically() -> None:
    policy = SweepPolicy(factor=2)
    assert [policy.rate(3, k) for k in (1, 2, 3)] == [3, 6, 12]


def test_a_refining_step_halves_the_interval_on_a_log_scale() -> None:
    assert between(60, 120) == pytest.approx(60 * 2**0.5)
    # three of them leave the limit within 2 ** (1/8) of the highest rate kept up
    kept_up, overloaded = 60.0, 120.0
    for limit in (100.0, 100.0, 100.0):
        rate = between(kept_up, overloaded)
        kept_up, overloaded = (kept_up, rate) if rate > limit else (rate, overloaded)
    assert overloaded / kept_up == pytest.approx(2 ** (1 / 8))
    assert kept_up <= 100 < overloaded


def test_the_self_check_flags_lag_cpu_and_dispatch_delay() -> None:
    calm = ClientHealth(0.001, 0.002, 0.003, 0.2)
    assert verdict([calm], 0.001) == []
    busy = ClientHealth(0.01, 0.05, 0.1, 0.97)
    reasons = verdict([calm, busy], 0.030)
    assert len(reasons) == 3
    assert reasons[0].startswith("process 1: event-loop lag p99 50.0 ms")


def test_the_down_watch_needs_repeated_connection_failures_and_no_success() -> None:
    watch = DownWatch(window_s=5, min_failures=3)
    for t in (0.0, 0.1):
        watch.observe(t, reached=False, error="refused")
    assert not watch.down()
    watch.observe(0.2, reached=False, error="refused")
    assert watch.down()
    assert watch.last_error == "refused"
    watch.observe(0.3, reached=True)
    assert not watch.down()
    for t in (10.0, 10.1, 10.2):
        watch.observe(t, reached=False)
    assert watch.down()  # the old success fell out of the window


def test_advice_tells_a_busy_machine_from_a_busy_client() -> None:
    assert advice([0.97], 1) == "spread the load over more client processes: --processes 2"
    held_up = advice([0.04, 0.1], 2)
    assert "at most 10% of a core" in held_up
    assert "--processes" not in held_up
