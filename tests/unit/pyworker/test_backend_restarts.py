"""The managed backend's restart back-off and load watchdog, driven with times handed in."""

from __future__ import annotations

import pytest

from pyworker.backend.restarts import Backoff, LoadPhase, LoadWatchdog


def test_each_crash_in_a_row_waits_longer_up_to_the_cap() -> None:
    backoff = Backoff(initial_s=2, factor=2, max_s=10, stable_s=300)
    delays = []
    for now in (0.0, 5.0, 10.0, 15.0, 20.0):
        backoff.started(now)
        delays.append(backoff.next_delay(now + 1))
    assert delays == [2, 4, 8, 10, 10]


def test_a_backend_that_served_crashes_as_if_for_the_first_time() -> None:
    backoff = Backoff(initial_s=2, factor=3, max_s=100, stable_s=300)
    backoff.started(0.0)
    assert backoff.next_delay(1.0) == 2
    backoff.started(3.0)
    assert backoff.next_delay(4.0) == 6
    backoff.started(10.0)
    backoff.served()
    assert backoff.next_delay(11.0) == 2


def test_a_backend_that_stayed_up_long_enough_earns_a_fresh_start() -> None:
    backoff = Backoff(initial_s=1, factor=2, max_s=60, stable_s=100)
    for now in (0.0, 2.0, 4.0):
        backoff.started(now)
        backoff.next_delay(now + 1)
    backoff.started(10.0)
    assert backoff.next_delay(10.0 + 99) == 8  # not yet stable: the fourth in a row
    backoff.started(200.0)
    assert backoff.next_delay(200.0 + 100) == 1


@pytest.mark.parametrize(("initial_s", "factor", "max_s"), [(0, 2, 10), (1, 0.5, 10), (5, 2, 1)])
def test_a_backoff_that_cannot_work_is_refused(
    initial_s: float, factor: float, max_s: float
) -> None:
    with pytest.raises(ValueError, match="back-off"):
        Backoff(initial_s=initial_s, factor=factor, max_s=max_s)


def test_a_load_past_the_timeout_is_hung_and_stays_hung() -> None:
    watchdog = LoadWatchdog(started_at=100.0, load_timeout_s=60.0)
    assert watchdog.check(159.9) is LoadPhase.LOADING
    assert watchdog.remaining_s(130.0) == pytest.approx(30.0)
    assert watchdog.check(160.0) is LoadPhase.HUNG
    watchdog.loaded()  # too late: this start is over
    assert watchdog.check(161.0) is LoadPhase.HUNG
    assert watchdog.remaining_s(161.0) == 0.0


def test_a_backend_that_loaded_in_time_is_never_hung() -> None:
    watchdog = LoadWatchdog(started_at=0.0, load_timeout_s=10.0)
    watchdog.loaded()
    assert watchdog.check(10_000.0) is LoadPhase.SERVING
    assert watchdog.remaining_s(5.0) == 0.0
