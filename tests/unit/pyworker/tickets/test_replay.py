from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyworker.tickets.replay import ReplayVerdict, ReplayWindow


class ReferenceWindow:
    """The obvious, unbounded-memory model the bit window must agree with."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.used: set[int] = set()

    def accept(self, number: int) -> ReplayVerdict:
        highest = max(self.used, default=None)
        if highest is not None and number <= highest - self.size:
            return ReplayVerdict.TOO_OLD
        if number in self.used:
            return ReplayVerdict.REPLAYED
        self.used.add(number)
        return ReplayVerdict.ACCEPTED


@given(
    size=st.integers(min_value=1, max_value=64),
    numbers=st.lists(st.integers(min_value=0, max_value=200), max_size=200),
)
def test_the_window_agrees_with_the_reference_model(size: int, numbers: list[int]) -> None:
    window, reference = ReplayWindow(size), ReferenceWindow(size)
    for number in numbers:
        assert window.accept(number) == reference.accept(number), number


@given(st.permutations(list(range(1, 65))))
def test_out_of_order_arrival_within_the_window_is_accepted_once(order: list[int]) -> None:
    window = ReplayWindow(64)
    assert all(window.accept(n) is ReplayVerdict.ACCEPTED for n in order)
    assert all(window.accept(n) is ReplayVerdict.REPLAYED for n in order)


def test_numbers_below_the_window_are_too_old() -> None:
    window = ReplayWindow(4)
    window.accept(10)
    assert window.accept(7) is ReplayVerdict.ACCEPTED
    assert window.accept(6) is ReplayVerdict.TOO_OLD


def test_a_big_jump_forgets_everything_below_the_window() -> None:
    window = ReplayWindow(8)
    window.accept(1)
    window.accept(1_000_000)
    assert window.accept(1) is ReplayVerdict.TOO_OLD
    assert window.accept(999_999) is ReplayVerdict.ACCEPTED


def test_check_does_not_record() -> None:
    window = ReplayWindow(8)
    assert window.check(5) is ReplayVerdict.ACCEPTED
    assert window.accept(5) is ReplayVerdict.ACCEPTED


def test_window_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="slot"):
        ReplayWindow(0)
