"""Request slots: an immediate 429 beyond the limit, released however a request ends."""

from __future__ import annotations

import pytest

from protocol.errors import ErrorBody
from tgi_server.errors import OverloadedError
from tgi_server.request_slots import RequestSlots


def test_slots_are_refused_at_once_when_all_are_taken() -> None:
    slots = RequestSlots(2)
    with slots.hold(), slots.hold():
        assert slots.in_use == 2
        with pytest.raises(OverloadedError) as caught, slots.hold():
            pass
        assert caught.value.status == 429
        expected = ErrorBody(error="Model is overloaded", error_type="overloaded")
        assert caught.value.body() == expected
    assert slots.in_use == 0


def test_best_of_takes_several_slots_at_once() -> None:
    slots = RequestSlots(3)
    with slots.hold(2):
        with pytest.raises(OverloadedError), slots.hold(2):
            pass
        with slots.hold(1):
            assert slots.in_use == 3


def test_slots_come_back_when_the_request_fails() -> None:
    slots = RequestSlots(1)
    with pytest.raises(RuntimeError), slots.hold():
        raise RuntimeError("handler failed")
    assert slots.in_use == 0


def test_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RequestSlots(0)
