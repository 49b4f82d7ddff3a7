"""Arrival schedules: counts, spans, burstiness, phases."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.bench.arrivals import Phase, parse_phases, schedule
from client.bench.errors import BenchInputError


@given(
    rate=st.floats(0.5, 2000),
    seconds=st.floats(0.5, 30),
    burstiness=st.sampled_from([0.25, 1.0, 4.0, math.inf]),
    seed=st.integers(0, 2**32),
)
def test_a_phase_has_rate_x_seconds_sorted_arrivals_inside_it(
    rate: float, seconds: float, burstiness: float, seed: int
) -> None:
    offsets = schedule([Phase(rate, seconds)], burstiness, random.Random(seed))
    assert len(offsets) == math.floor(rate * seconds)
    assert offsets == sorted(offsets)
    assert all(0 <= t < seconds + 1e-9 for t in offsets)


def test_even_arrivals_are_one_over_the_rate_apart() -> None:
    offsets = schedule([Phase(4, 2)], math.inf, random.Random(0))
    assert offsets == pytest.approx([i * 0.25 for i in range(8)])


def test_burstiness_orders_the_spread_of_gaps() -> None:
    def spread(burstiness: float) -> float:
        offsets = schedule([Phase(100, 30)], burstiness, random.Random(5))
        gaps = [b - a for a, b in itertools.pairwise(offsets)]
        return statistics.pstdev(gaps) / statistics.mean(gaps)

    assert spread(0.2) > spread(1.0) > spread(5.0) > spread(math.inf) - 1e-9
    assert spread(math.inf) < 1e-6
    assert 0.85 < spread(1.0) < 1.15  # Poisson: coefficient of variation 1


def test_phases_follow_each_other_and_idle_phases_send_nothing() -> None:
    offsets = schedule([Phase(0, 5), Phase(10, 2)], math.inf, random.Random(0))
    assert len(offsets) == 20
    assert min(offsets) == 5.0
    assert max(offsets) < 7.0


def test_parse_phases_reads_rate_seconds_lists() -> None:
    assert parse_phases("1:10, 5:2.5") == (Phase(1, 10), Phase(5, 2.5))


@pytest.mark.parametrize("text", ["1", "a:b", "1:0", "-1:5", "1:inf", "1e9:1"])
def test_bad_phases_are_input_errors(text: str) -> None:
    with pytest.raises(BenchInputError):
        parse_phases(text)


@pytest.mark.parametrize("burstiness", [0.0, -1.0, math.nan])
def test_bad_burstiness_is_an_input_error(burstiness: float) -> None:
    with pytest.raises(BenchInputError, match="burstiness"):
        schedule([Phase(1, 1)], burstiness, random.Random(0))
