from __future__ import annotations

import asyncio

import pytest

from pyworker.load import LoadTracker, Outcome


def tracker() -> LoadTracker:
    return LoadTracker(clock=lambda: 100.0)


def test_a_slot_counts_in_and_out() -> None:
    load = tracker()
    with load.slot(40) as slot:
        assert (load.in_flight_workload, load.requests_working) == (40, 1)
        slot.tokens_served = 30
    assert (load.in_flight_workload, load.requests_working) == (0, 0)
    assert load.outcomes[Outcome.SUCCESS] == 1
    assert load.recent_perf() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (RuntimeError("boom"), Outcome.ERROR),
        (asyncio.CancelledError(), Outcome.CANCELLED),
        (ConnectionResetError(), Outcome.CANCELLED),
    ],
)
def test_every_exit_path_returns_the_load(error: BaseException, outcome: Outcome) -> None:
    load = tracker()
    with pytest.raises(type(error)), load.slot(25):
        raise error
    assert (load.in_flight_workload, load.requests_working) == (0, 0)
    assert load.outcomes[outcome] == 1
    assert load.requests_received == 1


def test_a_workload_with_no_float_changes_nothing() -> None:
    """A count of 400 digits cannot be counted in: the tracker stays idle and empty (it used to
    clear `idle` first, so a drain waited for a request that never ran)."""
    load = tracker()
    with pytest.raises(OverflowError), load.slot(10**400):
        pass
    assert load.idle.is_set()
    assert (load.in_flight_workload, load.requests_working, load.requests_received) == (0, 0, 0)


def test_an_explicit_outcome_wins() -> None:
    load = tracker()
    with load.slot(1) as slot:
        slot.outcome = Outcome.ERROR
    assert load.outcomes[Outcome.ERROR] == 1


def test_recent_perf_forgets_old_work() -> None:
    now = [0.0]
    load = LoadTracker(clock=lambda: now[0], perf_window_s=10)
    with load.slot(1) as slot:
        slot.tokens_served = 50
    now[0] = 20.0
    assert load.recent_perf() == 0.0


def test_tokens_served_add_up_since_start() -> None:
    """What /metrics counts as `tgis_worker_generated_tokens_total`: nothing is forgotten."""
    now = [0.0]
    load = LoadTracker(clock=lambda: now[0], perf_window_s=10)
    for tokens, at in ((50, 0.0), (7, 30.0)):
        now[0] = at
        with load.slot(1) as slot:
            slot.tokens_served = tokens
    assert load.tokens_served_total == 57
