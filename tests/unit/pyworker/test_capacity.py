from __future__ import annotations

import heapq

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyworker.capacity import CapacityEstimator, ServedRequest
from pyworker.load import LoadTracker, Outcome, Serving
from tests.clock import FakeClock


def saturated(tokens: float, duration_s: float, in_flight: float = 8.0) -> ServedRequest:
    """A request served beside `in_flight` requests, none queued."""
    return ServedRequest(tokens, duration_s, mean_served=in_flight, mean_in_flight=in_flight)


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


def test_requests_queued_at_the_relay_limit_mark_saturation_and_are_not_served_beside() -> None:
    """With the relay capped at the benchmark's concurrency, the backend never holds more than 8
    and, between one request and the next, holds fewer: demand (8 served and 4 queued on
    average) is what says the worker was saturated, and the 7.5 served what it served."""
    capacity = estimator()
    for _ in range(30):  # 7.5 at a time, 30 tokens in 1.5 s each: 150 tokens/s
        capacity.observe(ServedRequest(30, 1.5, mean_served=7.5, mean_in_flight=12.0))
    assert capacity.live_perf == pytest.approx(150.0)
    assert capacity.max_perf == pytest.approx(150.0)


def test_a_worker_rated_too_low_at_start_up_is_raised_by_what_it_serves_below_saturation() -> None:
    """Routing sends an underrated worker little load, so it may never be saturated: what it
    serves at low concurrency must still lift its figure, or it stays starved for good."""
    capacity = estimator(startup_perf=28.0)
    for _ in range(20):  # 3 requests at a time, 60 tokens in 1 s each: 180 tokens/s served
        capacity.observe(saturated(tokens=60, duration_s=1.0, in_flight=3.0))
    assert capacity.live_perf is None  # never saturated
    # Each request ran at 60 tokens/s; 8 of them side by side would serve 480.
    assert capacity.extrapolated_perf == pytest.approx(480.0)
    assert capacity.max_perf == pytest.approx(480.0)


def test_a_live_figure_measured_low_is_lifted_while_the_worker_starves() -> None:
    """A worker measured at saturation while the machine was busy draws little load afterwards;
    what it then serves, below saturation, lifts it within a time constant of being busy."""
    capacity = estimator()
    for _ in range(20):  # 20 s of saturated serving at 91 tokens/s
        capacity.observe(saturated(tokens=91, duration_s=8.0))
    assert capacity.max_perf == pytest.approx(91.0)
    for _ in range(60):  # then 30 s with 2 requests at a time, each at 50 tokens/s
        capacity.observe(saturated(tokens=50, duration_s=1.0, in_flight=2.0))
    assert capacity.live_perf == pytest.approx(91.0)  # no saturated sample since
    assert capacity.max_perf > 300.0  # the extrapolation (400) has nearly taken over


@given(
    st.floats(min_value=0.0, max_value=1e4),
    st.lists(
        st.builds(
            lambda tokens, duration_s, served, queued: ServedRequest(
                tokens, duration_s, served, served + queued
            ),
            st.floats(min_value=1, max_value=1e4),
            st.floats(min_value=0.01, max_value=100),
            st.floats(min_value=1, max_value=64),
            st.floats(min_value=0, max_value=64),
        ),
        max_size=40,
    ),
)
def test_the_figure_is_never_below_what_serving_demonstrated(
    startup_perf: float, served: list[ServedRequest]
) -> None:
    """Whatever the concurrency, the tokens served over the serving time they took (Little's
    law over every request) is a floor, and so are the live and the extrapolated figures."""
    capacity = CapacityEstimator(time_constant_s=1e12, min_evidence_s=3.0)  # no fading
    capacity.start_from(startup_perf, saturation_requests=8)
    for request in served:
        capacity.observe(request)
    serving_s = sum(request.serving_s for request in served)
    if serving_s >= 3.0:
        demonstrated = sum(request.tokens for request in served) / serving_s
        assert capacity.max_perf >= demonstrated * (1 - 1e-9)
    assert capacity.max_perf >= (capacity.extrapolated_perf or 0.0)
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
        lambda tokens, duration_s, served, queued: ServedRequest(
            tokens, duration_s, served, max(8.0, served + queued)
        ),
        st.floats(1.0, 10_000.0),
        st.floats(0.01, 100.0),
        st.floats(1.0, 256.0),
        st.floats(0.0, 64.0),
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
    serving = {}
    for lane in range(len(lanes)):
        serving[lane] = begin_serving(load)
        heapq.heappush(running, (lanes[lane][0] / per_request_tps, lane, 0))
    while running:
        finishes_at, lane, index = heapq.heappop(running)
        clock.now = finishes_at
        load.finish(1, Outcome.SUCCESS, lanes[lane][index], serving[lane])
        if index + 1 < len(lanes[lane]):
            serving[lane] = begin_serving(load)
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
def test_serving_seconds_add_up_to_the_requests_durations(
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
    serving = {}
    for at, is_start, index in events:
        clock.now = at
        if is_start:
            serving[index] = begin_serving(load)
        else:
            load.finish(1, Outcome.SUCCESS, requests[index][2], serving[index])
    assert (load.requests_working, load.in_flight_workload, load.idle.is_set()) == (0, 0, True)
    total = sum(length for _, length, _ in requests)
    assert load.serving_seconds == pytest.approx(total, abs=1e-6)
    assert load.requests_serving == 0
    assert all(served.mean_in_flight >= served.mean_served >= 1.0 for served in recorder.seen)
    assert len(recorder.seen) == len([r for r in requests if r[2] > 0])


def test_requests_queued_in_front_of_the_relay_are_not_counted_as_served_beside() -> None:
    """Eight requests at the backend and eight more queued behind the relay's limit: the queued
    ones make no progress, so the eight served count 8 beside them, not 16 (the estimate is what
    the backend served), while the 16 in flight say that demand saturated it."""
    clock = FakeClock(0.0)
    recorder = RecordingEstimator()
    load = LoadTracker(clock=clock, capacity=recorder)
    serving = []
    for _ in range(16):
        load.begin(1)
    for _ in range(8):
        serving.append(load.start_serving())
    clock.now = 2.0
    for started in serving:
        load.finish(1, Outcome.SUCCESS, 20, started)
    assert [(s.mean_served, s.mean_in_flight) for s in recorder.seen] == [(8.0, 16.0)] * 8
    assert (load.requests_working, load.requests_serving) == (8, 0)


def test_a_request_that_never_reached_the_backend_teaches_nothing() -> None:
    clock = FakeClock(0.0)
    recorder = RecordingEstimator()
    load = LoadTracker(clock=clock, capacity=recorder)
    with load.slot(1) as slot:
        clock.now = 1.0
        slot.tokens_served = 5  # e.g. refused before the relay
    assert (recorder.seen, load.requests_serving, load.tokens_served_total) == ([], 0, 5)
    with load.slot(1) as slot:
        slot.start_serving()
        clock.now = 3.0
        slot.tokens_served = 5
    assert [(s.duration_s, s.mean_served) for s in recorder.seen] == [(2.0, 1.0)]


def begin_serving(load: LoadTracker) -> Serving:
    load.begin(1)
    return load.start_serving()


class RecordingEstimator(CapacityEstimator):
    """Keeps what it is given to observe."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[ServedRequest] = []

    def observe(self, served: ServedRequest) -> None:
        self.seen.append(served)
