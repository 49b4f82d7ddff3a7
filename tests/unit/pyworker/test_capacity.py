from __future__ import annotations

import heapq

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyworker.capacity import CapacityEstimator, ServedRequest
from pyworker.load import LoadTracker, Outcome
from tests.clock import FakeClock


def saturated(tokens: float, duration_s: float, in_flight: float = 8.0) -> ServedRequest:
    return ServedRequest(tokens=tokens, duration_s=duration_s, mean_in_flight=in_flight)


def estimator(startup_perf: float = 1000.0) -> CapacityEstimator:
    capacity = CapacityEstimator(time_constant_s=20.0, min_evidence_s=3.0)
    capacity.start_from(startup_perf, saturation_requests=8)
    return capacity


def test_the_startup_figure_holds_until_enough_saturated_serving_backs_the_live_one() -> None:
    capacity = estimator(startup_perf=5000.0)
    capacity.observe(saturated(tokens=50, duration_s=8.0))  # 1 s of serving time: 50 tokens/s
    assert (capacity.live_perf, capacity.max_perf) == (None, 5000.0)
    capacity.observe(saturated(tokens=100, duration_s=16.0))  # 3 s in all
    assert capacity.live_perf == pytest.approx(50.0)
    assert capacity.max_perf == pytest.approx(50.0)
    assert capacity.startup_perf == 5000.0


def test_requests_below_saturation_never_pull_the_figure_down() -> None:
    """A lone request runs at one stream's speed, not at capacity: it must not pull the figure
    down (nor a few requests at a time, below the benchmark's concurrency)."""
    capacity = estimator()
    for _ in range(100):
        capacity.observe(saturated(tokens=10, duration_s=1.0, in_flight=7.9))
        capacity.observe(saturated(tokens=0, duration_s=1.0))  # generated nothing
    assert capacity.live_perf is None
    assert capacity.max_perf == 1000.0


def test_a_worker_rated_too_low_at_start_up_is_raised_by_what_it_serves_below_saturation() -> None:
    """Routing sends an underrated worker little load, so it may never be saturated: what it
    serves at low concurrency must still lift its figure, or it stays starved for good."""
    capacity = estimator(startup_perf=28.0)
    for _ in range(20):  # 3 requests at a time, 60 tokens in 1 s each: 180 tokens/s served
        capacity.observe(saturated(tokens=60, duration_s=1.0, in_flight=3.0))
    assert capacity.live_perf is None  # never saturated
    assert capacity.demonstrated_perf == pytest.approx(180.0)
    assert capacity.max_perf == pytest.approx(180.0)


@given(
    st.floats(min_value=0.0, max_value=1e4),
    st.lists(
        st.builds(
            ServedRequest,
            tokens=st.floats(min_value=1, max_value=1e4),
            duration_s=st.floats(min_value=0.01, max_value=100),
            mean_in_flight=st.floats(min_value=1, max_value=64),
        ),
        max_size=40,
    ),
)
def test_the_figure_is_never_below_what_serving_demonstrated(
    startup_perf: float, served: list[ServedRequest]
) -> None:
    capacity = estimator(startup_perf)
    for request in served:
        capacity.observe(request)
    demonstrated = capacity.demonstrated_perf
    assert capacity.max_perf >= (demonstrated or 0.0)
    assert capacity.max_perf >= (capacity.live_perf or startup_perf) * (1 - 1e-12)


def test_older_samples_fade_so_the_figure_follows_a_change() -> None:
    capacity = estimator()
    for _ in range(40):  # 40 s of serving time at 400 tokens/s
        capacity.observe(saturated(tokens=400, duration_s=8.0))
    assert capacity.max_perf == pytest.approx(400.0)
    for _ in range(100):  # then the machine is shared: 100 tokens/s for 100 s
        capacity.observe(saturated(tokens=100, duration_s=8.0))
    assert capacity.max_perf == pytest.approx(100.0, rel=0.1)


def test_a_new_startup_benchmark_forgets_the_live_figure() -> None:
    capacity = estimator()
    for _ in range(10):
        capacity.observe(saturated(tokens=100, duration_s=8.0))
    capacity.start_from(700.0, saturation_requests=2)
    assert (capacity.live_perf, capacity.max_perf, capacity.saturation_requests) == (None, 700, 2)


@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan")])
def test_a_startup_figure_must_be_finite_and_not_negative(bad: float) -> None:
    with pytest.raises(ValueError, match="startup_perf"):
        estimator().start_from(bad, saturation_requests=1)


samples = st.lists(
    st.builds(
        ServedRequest,
        tokens=st.floats(1.0, 10_000.0),
        duration_s=st.floats(0.01, 100.0),
        mean_in_flight=st.floats(8.0, 256.0),
    ),
    min_size=1,
    max_size=50,
)


@given(samples)
def test_the_live_figure_lies_between_the_samples_throughputs(served: list[ServedRequest]) -> None:
    capacity = estimator()
    for request in served:
        capacity.observe(request)
    live = capacity.live_perf
    if sum(request.serving_s for request in served) < 3.0:
        assert live is None
        return
    assert live is not None
    throughputs = [request.throughput for request in served]
    assert min(throughputs) * (1 - 1e-9) <= live <= max(throughputs) * (1 + 1e-9)


@given(
    lanes=st.lists(st.lists(st.integers(1, 500), min_size=1, max_size=12), min_size=8, max_size=16),
    capacity_tps=st.floats(10.0, 5000.0),
)
def test_a_backend_at_steady_concurrency_is_measured_exactly(
    lanes: list[list[int]], capacity_tps: float
) -> None:
    """`len(lanes)` clients each send requests back to back (of the lane's token counts) to a
    backend that splits `capacity_tps` evenly among the requests it runs: whatever the sizes,
    the tracker's accounting of time and concurrency makes the estimate that capacity."""
    clock = FakeClock(0.0)
    load = LoadTracker(clock=clock)
    load.capacity = CapacityEstimator(time_constant_s=20.0, min_evidence_s=1e-9)
    load.capacity.start_from(1.0, saturation_requests=len(lanes))
    per_request_tps = capacity_tps / len(lanes)
    running: list[tuple[float, int, int]] = []  # (finishes at, lane, request index)
    admitted = {}
    for lane in range(len(lanes)):
        admitted[lane] = load.begin(1)
        heapq.heappush(running, (lanes[lane][0] / per_request_tps, lane, 0))
    while running:
        finishes_at, lane, index = heapq.heappop(running)
        clock.now = finishes_at
        load.finish(1, Outcome.SUCCESS, lanes[lane][index], admitted[lane])
        if index + 1 < len(lanes[lane]):
            admitted[lane] = load.begin(1)
            next_tokens = lanes[lane][index + 1]
            heapq.heappush(running, (finishes_at + next_tokens / per_request_tps, lane, index + 1))
        elif running:
            break  # a lane ran dry: the concurrency drops below saturation from here on
    assert load.capacity.max_perf == pytest.approx(capacity_tps, rel=1e-6)


intervals = st.lists(
    st.tuples(st.floats(0.0, 100.0), st.floats(0.001, 50.0), st.integers(0, 100)),
    min_size=1,
    max_size=40,
)


@given(intervals)
def test_request_seconds_add_up_to_the_requests_durations(
    requests: list[tuple[float, float, int]],
) -> None:
    """However requests overlap, the integral of requests in flight is the sum of their
    durations, none is counted with fewer than itself in flight, and the tracker ends idle."""
    clock = FakeClock(0.0)
    recorder = RecordingEstimator()
    load = LoadTracker(clock=clock, capacity=recorder)
    events = sorted(
        [(start, 1, index) for index, (start, _, _) in enumerate(requests)]
        + [(start + length, 0, index) for index, (start, length, _) in enumerate(requests)]
    )  # at a tie, ends before starts: a request never overlaps one that ended at its start
    admitted = {}
    for at, is_start, index in events:
        clock.now = at
        if is_start:
            admitted[index] = load.begin(1)
        else:
            load.finish(1, Outcome.SUCCESS, requests[index][2], admitted[index])
    assert (load.requests_working, load.in_flight_workload, load.idle.is_set()) == (0, 0, True)
    total = sum(length for _, length, _ in requests)
    assert load.request_seconds == pytest.approx(total, abs=1e-6)
    assert all(served.mean_in_flight >= 1.0 for served in recorder.seen)
    assert len(recorder.seen) == len([r for r in requests if r[2] > 0])


class RecordingEstimator(CapacityEstimator):
    """Keeps what it is given to observe."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[ServedRequest] = []

    def observe(self, served: ServedRequest) -> None:
        self.seen.append(served)
