"""The router's time as a worker reckons it: its own clock plus the offset its reports' answers
show (their `Date`), measured at the middle of the round trip."""

from __future__ import annotations

import logging

import pytest

from pyworker.tickets.router_clock import RouterClock

ROUTER_SECOND = "Sat, 05 Dec 2026 21:00:00 GMT"
ROUTER_AT = 1796504400.0  # that second, unix time


def clock_at(local: float) -> RouterClock:
    return RouterClock(lambda: local, skew_allowance_s=5.0)


def test_before_any_answer_the_router_time_is_the_local_time() -> None:
    assert clock_at(100.0).now() == 100.0


def test_the_offset_is_taken_at_the_middle_of_the_round_trip_and_second() -> None:
    clock = clock_at(ROUTER_AT + 31.0)
    clock.observe(ROUTER_SECOND, sent_at=ROUTER_AT + 29.0, received_at=ROUTER_AT + 31.0)
    assert clock.offset_s == pytest.approx(-29.5)  # the router read 21:00:00.5 at local +30
    assert clock.now() == pytest.approx(ROUTER_AT + 1.5)


@pytest.mark.parametrize("header", [None, "", "yesterday", "Sat, 05 Dec 2026 21:00:00"])
def test_an_absent_or_unreadable_date_changes_nothing(header: str | None) -> None:
    clock = clock_at(ROUTER_AT)
    clock.observe(ROUTER_SECOND, ROUTER_AT - 10.5, ROUTER_AT - 9.5)
    clock.observe(header, ROUTER_AT, ROUTER_AT)
    assert clock.offset_s == pytest.approx(10.5)


def test_an_answer_before_its_question_is_ignored() -> None:
    clock = clock_at(ROUTER_AT)
    clock.observe(ROUTER_SECOND, sent_at=ROUTER_AT, received_at=ROUTER_AT - 1)
    assert clock.offset_s == 0.0


def test_a_clock_off_beyond_the_allowance_is_logged_once_until_it_moves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = clock_at(ROUTER_AT)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            clock.observe(ROUTER_SECOND, ROUTER_AT + 30, ROUTER_AT + 30)
        assert len(caplog.records) == 1
        assert "-29.5 s off" not in caplog.text
        assert "+29.5 s off" in caplog.text
        clock.observe(ROUTER_SECOND, ROUTER_AT + 2, ROUTER_AT + 2)  # within: forgotten
        clock.observe(ROUTER_SECOND, ROUTER_AT + 30, ROUTER_AT + 30)
    assert len(caplog.records) == 2
