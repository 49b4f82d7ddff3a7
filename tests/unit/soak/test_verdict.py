"""The soak's verdict rules (`soak.verdict`): each check on made-up samples and records."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.bench.records import RequestRecord
from soak.verdict import (
    AtRest,
    Limits,
    ProcessSample,
    Windows,
    cpu_check,
    fd_check,
    judge,
    lost_check,
    p99_drift_check,
    rss_check,
)

SECONDS = 600.0
WINDOWS = Windows.of(SECONDS)
LIMITS = Limits()
MIB = 2**20


def series(
    rss: list[int], fds: list[int] | None = None, every_s: float = 5.0
) -> list[ProcessSample]:
    """Samples every `every_s` from t=0, one per value."""
    fds = fds or [20] * len(rss)
    return [ProcessSample(i * every_s, r, f) for i, (r, f) in enumerate(zip(rss, fds, strict=True))]


def ramp(start: float, end: float, count: int = 121) -> list[int]:
    """`count` values from `start` to `end`, evenly."""
    return [round(start + (end - start) * i / (count - 1)) for i in range(count)]


def request(intended: float, e2e: float = 1.0, outcome: str = "ok") -> RequestRecord:
    end = intended + e2e if outcome == "ok" else None
    return RequestRecord(0, intended, 32, 64, end=end, outcome=outcome)  # type: ignore[arg-type]


def steady_requests(latency: float = 1.0, every_s: float = 1.0) -> list[RequestRecord]:
    return [request(i * every_s, latency) for i in range(int(SECONDS / every_s))]


def test_the_windows_of_ten_minutes_are_those_the_issue_names() -> None:
    assert (WINDOWS.steady_start.start, WINDOWS.steady_start.end) == (120, 150)
    assert (WINDOWS.end.start, WINDOWS.end.end) == (570, 600)
    assert (WINDOWS.first_latency.start, WINDOWS.first_latency.end) == (120, 240)
    assert (WINDOWS.last_latency.start, WINDOWS.last_latency.end) == (480, 600)


@given(st.floats(min_value=1.0, max_value=1e6))
def test_windows_keep_their_shape_at_any_length(seconds: float) -> None:
    windows = Windows.of(seconds)
    assert windows.first_latency.start == windows.steady_start.start == pytest.approx(seconds / 5)
    assert windows.steady_start.end <= windows.first_latency.end <= windows.last_latency.start
    assert windows.end.end == windows.last_latency.end == seconds


def test_memory_that_stays_flat_passes() -> None:
    check = rss_check("router", series([100 * MIB] * 121), WINDOWS, LIMITS)
    assert check.passed
    assert check.value == 0


def test_memory_that_grows_six_percent_over_the_steady_part_fails() -> None:
    # 100 MiB at 2 min, growing steadily to 106.5 MiB at 10 min: the medians differ by > 5 %.
    samples = series([100 * MIB] * 24 + ramp(100 * MIB, 106.5 * MIB, 97))
    check = rss_check("worker-1 backend", samples, WINDOWS, LIMITS)
    assert not check.passed
    assert check.value is not None
    assert 0.05 < check.value < 0.065
    assert check.subject == "worker-1 backend"


def test_growth_during_the_warm_up_is_not_counted() -> None:
    # Doubles in the first two minutes (caches, pools), then flat.
    samples = series(ramp(50 * MIB, 100 * MIB, 24) + [100 * MIB] * 97)
    assert rss_check("router", samples, WINDOWS, LIMITS).passed


def test_one_spike_at_the_end_does_not_fail_memory() -> None:
    rss = [100 * MIB] * 121
    rss[-1] = 300 * MIB
    assert rss_check("router", series(rss), WINDOWS, LIMITS).passed


@given(
    st.integers(min_value=MIB, max_value=2**34),
    st.floats(min_value=-0.5, max_value=0.5).filter(lambda g: abs(abs(g) - 0.05) > 1e-6),
)
def test_rss_growth_is_the_ratio_of_the_medians(base: int, growth: float) -> None:
    after = round(base * (1 + growth))
    samples = series([base] * 60 + [after] * 61)
    check = rss_check("p", samples, WINDOWS, LIMITS)
    assert check.value == pytest.approx(after / base - 1)
    assert check.passed == (after / base - 1 < LIMITS.max_rss_growth)


def test_a_process_gone_before_the_end_fails_unmeasured() -> None:
    samples = series([100 * MIB] * 60)  # the last sample at 295 s
    rest = AtRest({"p": ProcessSample(0, MIB, 20)}, {})
    rss, fds = rss_check("p", samples, WINDOWS, LIMITS), fd_check("p", samples, rest, LIMITS)
    assert not rss.passed
    assert not fds.passed
    assert rss.value is None
    assert fds.value is None
    assert "not measured" in rss.detail


def at_rest(name: str, before: int, after: int) -> AtRest:
    return AtRest({name: ProcessSample(-1, MIB, before)}, {name: ProcessSample(631, MIB, after)})


def test_descriptors_back_where_they_were_at_rest_are_flat() -> None:
    # Under load the count follows the connections open; at rest it is back.
    fds = [20 + (i * 7) % 40 for i in range(121)]
    check = fd_check("router", series([MIB] * 121, fds), at_rest("router", 21, 23), LIMITS)
    assert check.passed
    assert check.value == 2
    assert check.detail == "at rest 21 before, 23 after; 20 to 59 under load"


def test_descriptors_kept_after_the_load_are_a_leak() -> None:
    check = fd_check("worker-2 pyworker", series([MIB] * 121), at_rest("p", 0, 0), LIMITS)
    assert not check.passed  # not read at rest under its own name: unmeasured
    rest = at_rest("worker-2 pyworker", 30, 35)
    check = fd_check("worker-2 pyworker", series([MIB] * 121), rest, LIMITS)
    assert not check.passed
    assert check.value == 5


@given(st.integers(0, 10_000), st.integers(-100, 100))
def test_the_fd_check_is_the_change_at_rest(before: int, change: int) -> None:
    check = fd_check("p", series([MIB] * 5), at_rest("p", before, before + change), LIMITS)
    assert check.value == change
    assert check.passed == (change <= LIMITS.fd_slack)


@given(st.lists(st.floats(min_value=0.01, max_value=100.0), min_size=5, max_size=50))
def test_the_same_latencies_early_and_late_do_not_drift(latencies: list[float]) -> None:
    early = [request(120 + i, latency) for i, latency in enumerate(latencies)]
    late = [request(480 + i, latency) for i, latency in enumerate(latencies)]
    check = p99_drift_check(early + late, WINDOWS, LIMITS)
    assert check.value == pytest.approx(0.0, abs=1e-9)
    assert check.passed


@given(st.floats(min_value=0.5, max_value=3.0).filter(lambda f: abs(f - 1.1) > 1e-6))
def test_p99_drift_is_the_change_of_the_late_p99(factor: float) -> None:
    records = [request(i, 1.0 if i < 480 else factor) for i in range(600)]  # the last 2 min
    check = p99_drift_check(records, WINDOWS, LIMITS)
    assert check.value is not None
    assert math.isclose(check.value, factor - 1, abs_tol=1e-9)
    assert check.passed == (factor - 1 < LIMITS.max_p99_drift)


def test_latency_drift_uses_the_first_steady_window_not_the_warm_up() -> None:
    records = [request(i, 5.0 if i < 120 else 1.0) for i in range(600)]  # slow while warming
    assert p99_drift_check(records, WINDOWS, LIMITS).value == pytest.approx(0.0)


def test_latency_that_grows_fails() -> None:
    records = [request(i, 1.0 + i / 600) for i in range(600)]  # 1.2 s at 2 min, 2 s at 10
    check = p99_drift_check(records, WINDOWS, LIMITS)
    assert not check.passed
    assert "ms" in check.detail


def test_no_request_in_a_window_fails_unmeasured() -> None:
    check = p99_drift_check([request(10.0)], WINDOWS, LIMITS)
    assert not check.passed
    assert check.value is None


@given(st.lists(st.sampled_from(["ok", "overloaded", "error", "timeout", "cancelled"])))
def test_every_request_not_ok_is_lost(outcomes: list[str]) -> None:
    records = [request(float(i), outcome=outcome) for i, outcome in enumerate(outcomes)]
    check = lost_check(records, LIMITS)
    lost = sum(outcome != "ok" for outcome in outcomes)
    assert check.value == lost
    assert check.passed == (lost == 0)
    for outcome in set(outcomes) - {"ok"}:
        assert f"{outcome} {outcomes.count(outcome)}" in check.detail


def test_the_verdict_passes_only_when_every_check_does() -> None:
    healthy = {"router [1]": series([100 * MIB] * 121)}
    rest = at_rest("router [1]", 20, 20)
    load = [(t, 1.0 if t < 300 else 3.0) for t in range(0, 600, 5)]
    verdict = judge(
        steady_requests(), healthy, rest, seconds=SECONDS, capacity_rps=10, rate_rps=8,
        limits=LIMITS, machine_load=load,
    )  # fmt: skip
    assert verdict.passed
    assert verdict.machine_load == (1.0, 3.0)
    assert [c.check for c in verdict.checks] == [
        "requests lost", "RSS growth", "file descriptors", "p99 drift"
    ]  # fmt: skip
    leaking = {**healthy, "worker-1 backend [2]": series(ramp(100 * MIB, 200 * MIB))}
    rest = AtRest({**rest.before, "worker-1 backend [2]": ProcessSample(0, MIB, 30)},
                  {**rest.after, "worker-1 backend [2]": ProcessSample(0, MIB, 31)})  # fmt: skip
    verdict = judge(
        steady_requests(), leaking, rest, seconds=SECONDS, capacity_rps=10, rate_rps=8,
        limits=LIMITS,
    )  # fmt: skip
    assert not verdict.passed
    assert verdict.machine_load == (None, None)
    failed = [(c.check, c.subject) for c in verdict.checks if not c.passed]
    assert failed == [("RSS growth", "worker-1 backend [2]")]
    assert verdict.model_dump(by_alias=True)["schema"] == "tgi-serverless-soak/1"


def test_the_drift_detail_gives_the_spread_of_p99_over_the_steady_part() -> None:
    """Slices as long as an edge window (30 s of 10 min): 0.5 s everywhere but one slice at
    2 s; the warm-up's 9 s is not part of it."""
    records = [request(i, 9.0 if i < 120 else 2.0 if 300 <= i < 330 else 0.5) for i in range(600)]
    check = p99_drift_check(records, WINDOWS, LIMITS)
    assert "; p99 by 30 s over the steady part: 500 to 2000 ms;" in check.detail


def sliced(levels: list[float], per_slice: int = 30) -> list[RequestRecord]:
    """Requests over the steady part (from 120 s), each 30 s slice at its own latency."""
    step = 30 / per_slice
    return [
        request(120 + index * 30 + k * step, level)
        for index, level in enumerate(levels)
        for k in range(per_slice)
    ]


def test_a_drift_within_the_runs_own_ups_and_downs_passes() -> None:
    """The last window's pooled p99 is 25 % above the first's, set by one slow slice; the
    run's slices go up and down that much with no trend: as likely shuffled, so no drift."""
    levels = [1.0, 0.8, 1.2, 0.9, 1.1, 1.5, 0.9, 1.3, 0.8, 1.0, 1.4, 1.1, 0.9, 1.5, 1.0, 0.8]
    check = p99_drift_check(sliced(levels), WINDOWS, LIMITS)
    assert check.value == pytest.approx(0.25)
    assert check.passed
    assert "shuffled, those slices shift as far" in check.detail


@pytest.mark.parametrize("step", [1.3, 2.0])
def test_a_level_that_moves_up_and_stays_fails_through_the_noise(step: float) -> None:
    noise = [1.0, 0.9, 1.1, 1.0] * 4
    levels = [level * (step if index >= 12 else 1) for index, level in enumerate(noise)]
    check = p99_drift_check(sliced(levels), WINDOWS, LIMITS)
    assert check.value is not None
    assert check.value > LIMITS.max_p99_drift
    assert not check.passed


def cpu_samples(rates: list[float], every_s: float = 5.0) -> list[ProcessSample]:
    """Samples every `every_s`, the CPU used growing at `rates[i]` cores in sample i's stretch."""
    cpu, samples = 0.0, []
    for index, rate in enumerate(rates):
        samples.append(ProcessSample(index * every_s, MIB, 20, cpu))
        cpu += rate * every_s
    return samples


def test_cpu_per_request_is_steady_for_steady_work() -> None:
    check = cpu_check("p", cpu_samples([0.5] * 121), steady_requests(), WINDOWS, LIMITS)
    assert check is not None
    assert check.value == pytest.approx(0.0)
    assert check.passed
    assert check.detail.startswith("500.00 -> 500.00 ms of CPU a request; shuffled, those")


def test_cpu_per_request_that_grows_fails() -> None:
    rates = [0.5 if i < 96 else 0.6 for i in range(121)]  # 20 % more in the last 2 minutes
    check = cpu_check("p", cpu_samples(rates), steady_requests(), WINDOWS, LIMITS)
    assert check is not None
    assert check.value == pytest.approx(0.2)
    assert not check.passed


def test_cpu_per_request_that_only_moves_with_the_pace_passes() -> None:
    """Up and down by slice (as a router's does with the requests in flight), 20 % higher in
    the last window than the first, no trend: as likely shuffled."""
    by_slice = [
        0.5,
        0.45,
        0.55,
        0.5,
        0.6,
        0.4,
        0.55,
        0.45,
        0.5,
        0.6,
        0.45,
        0.5,
        0.6,
        0.6,
        0.55,
        0.65,
    ]
    rates = [0.5] * 24 + [rate for rate in by_slice for _ in range(6)] + [0.6]
    check = cpu_check("router", cpu_samples(rates), steady_requests(), WINDOWS, LIMITS)
    assert check is not None
    assert check.value is not None
    assert check.value > LIMITS.max_cpu_growth
    assert check.passed


def test_an_idle_process_has_no_cpu_check() -> None:
    assert (
        cpu_check("fork server", cpu_samples([0.001] * 121), steady_requests(), WINDOWS, LIMITS)
        is None
    )


def test_a_workers_cpu_counts_the_requests_it_served() -> None:
    """The router moves load from worker-2 to worker-1 half-way (their measured capacities
    moved): worker-1's backend does the same work per request it serves, so no growth, though
    its CPU per request of all requests grew by half."""
    records = [
        dataclasses.replace(request(i / 2), worker="w1" if i % 4 < (2 if i < 600 else 3) else "w2")
        for i in range(1200)
    ]
    rates = [0.5 if i < 60 else 0.75 for i in range(121)]  # 0.5 s of CPU a request served
    served = {"worker-1 backend [2]": cpu_samples(rates)}
    verdict = judge(
        records, served, AtRest({}, {}), seconds=SECONDS, capacity_rps=2, rate_rps=2,
        limits=LIMITS, worker_urls={"worker-1": "w1"},
    )  # fmt: skip
    [cpu] = [check for check in verdict.checks if check.check == "CPU per request"]
    assert cpu.value == pytest.approx(0.0, abs=0.02)
    alone = judge(
        records, served, AtRest({}, {}), seconds=SECONDS, capacity_rps=2, rate_rps=2,
        limits=LIMITS,
    )  # fmt: skip
    [cpu] = [check for check in alone.checks if check.check == "CPU per request"]
    assert cpu.value == pytest.approx(0.5, abs=0.02)
