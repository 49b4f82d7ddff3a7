from __future__ import annotations

import pytest

from router.autoscaler.breach import BreachTimer
from router.autoscaler.window import RunningMax, SlidingWindow


def test_a_window_rate_counts_only_the_last_length_seconds() -> None:
    window = SlidingWindow(10.0)
    for t in range(30):
        window.add(float(t), 100.0 if t < 20 else 0.0)
    assert window.rate(29.0, 1.0) == pytest.approx(0.0)
    fresh = SlidingWindow(10.0)
    for t in range(10):
        fresh.add(float(t), 50.0)
    assert fresh.rate(9.0, 1.0) == pytest.approx(50.0)


def test_a_young_window_divides_by_its_age_not_its_length() -> None:
    window = SlidingWindow(60.0)
    window.add(0.0, 100.0)
    window.add(1.0, 100.0)
    assert window.rate(1.0, 1.0) == pytest.approx(100.0)


def test_running_max_forgets_old_peaks() -> None:
    peak = RunningMax(5.0)
    assert peak.add(0.0, 9.0) == 9.0
    assert peak.add(3.0, 2.0) == 9.0
    assert peak.add(6.0, 1.0) == 2.0
    assert peak.add(9.0, 0.0) == 1.0


def test_a_breach_is_sustained_only_after_its_delay() -> None:
    timer = BreachTimer(delay_s=5.0, tolerance_s=2.0)
    assert [timer.update(float(t), True) for t in range(7)] == [False] * 5 + [True, True]


def test_one_contrary_sample_does_not_reset_a_breach() -> None:
    timer = BreachTimer(delay_s=5.0, tolerance_s=2.0)
    samples = [True, True, True, False, True, True, True]
    results = [timer.update(float(t), value) for t, value in enumerate(samples)]
    assert results[-2:] == [True, True]


def test_a_long_contrary_spell_resets_a_breach() -> None:
    timer = BreachTimer(delay_s=5.0, tolerance_s=2.0)
    samples = [True, True, True, False, False, False, True, True, True]
    results = [timer.update(float(t), value) for t, value in enumerate(samples)]
    assert not any(results)
    assert timer.lasted(8.0) == 2.0
