"""Route bodies, route answers and the polling schedule, without any network."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client import routing
from client.errors import ProtocolError, ValidationError
from tests.clock import FakeClock

TICKET: dict[str, Any] = {
    "signature": "c2lnbmF0dXJl",
    "cost": 100,
    "endpoint": "default",
    "reqnum": 7,
    "url": "http://10.0.0.2:3000/",
    "request_idx": 3,
    "exp": 1700000000.5,
    "kid": "0123456789abcdef",
    "extra": {"kept": ["as", "is"]},
}


def test_route_body_has_endpoint_and_cost_and_no_key() -> None:
    assert routing.route_body("default", 100) == {"endpoint": "default", "cost": 100}


def test_route_body_polls_with_the_request_idx() -> None:
    assert routing.route_body("e", 5, 42) == {"endpoint": "e", "cost": 5, "request_idx": 42}


@pytest.mark.parametrize(("endpoint", "cost"), [("", 10), ("default", 0), ("default", 10**7)])
def test_route_body_refuses_what_the_router_would(endpoint: str, cost: int) -> None:
    with pytest.raises(ValidationError) as caught:
        routing.route_body(endpoint, cost)
    assert caught.value.origin == "client"


def test_an_answer_with_url_is_a_ticket_kept_exactly() -> None:
    ticket = routing.interpret_route_answer(dict(TICKET))
    assert isinstance(ticket, routing.Ticket)
    assert ticket.auth_data() == TICKET
    assert ticket.url == "http://10.0.0.2:3000/"


def test_a_ticket_builds_the_worker_request() -> None:
    ticket = routing.Ticket(TICKET)
    assert ticket.worker_url("/generate") == "http://10.0.0.2:3000/generate"
    payload = {"inputs": "hi", "parameters": {"max_new_tokens": 5}}
    assert ticket.worker_body(payload) == {"auth_data": TICKET, "payload": payload}


def test_a_ticket_is_a_copy_and_its_repr_hides_the_signature() -> None:
    fields = dict(TICKET)
    ticket = routing.Ticket(fields)
    fields["url"] = "http://elsewhere"
    ticket.auth_data()["cost"] = 1
    assert ticket.auth_data() == TICKET
    assert TICKET["signature"] not in repr(ticket)


def test_an_answer_without_url_means_wait_and_poll() -> None:
    answer = {"endpoint": "default", "status": {"loading": 1}, "request_idx": 9}
    waiting = routing.interpret_route_answer(answer)
    assert waiting == routing.Waiting(endpoint="default", request_idx=9, status={"loading": 1})


def test_a_vast_style_wait_without_request_idx_is_still_a_wait() -> None:
    waiting = routing.interpret_route_answer({"endpoint": "default", "status": {"loading": 2}})
    assert waiting == routing.Waiting(endpoint="default", request_idx=None, status={"loading": 2})


@pytest.mark.parametrize(
    "answer",
    [
        [],
        "ticket",
        {"endpoint": "default"},
        {"endpoint": "default", "status": {}, "request_idx": "9"},
        {"endpoint": "default", "status": {}, "request_idx": -1},
        {"endpoint": "default", "status": {}, "request_idx": True},
        {**TICKET, "url": 5},
        {**TICKET, "url": "ftp://10.0.0.2"},
    ],
)
def test_a_malformed_answer_is_a_protocol_error(answer: object) -> None:
    with pytest.raises(ProtocolError) as caught:
        routing.interpret_route_answer(answer)
    assert caught.value.origin == "router"


def test_poll_delays_start_at_the_initial_delay_and_grow() -> None:
    delays = routing.PollPolicy().delays(random.Random(1))
    first = [next(delays) for _ in range(20)]
    assert first[0] == 1.0
    assert max(first) > 2.0


@given(
    seed=st.integers(),
    initial=st.floats(min_value=0.001, max_value=10),
    spread=st.floats(min_value=1, max_value=20),
    factor=st.floats(min_value=1, max_value=10),
)
def test_poll_delays_stay_within_the_initial_and_max_delay(
    seed: int, initial: float, spread: float, factor: float
) -> None:
    policy = routing.PollPolicy(initial_delay=initial, max_delay=initial * spread, factor=factor)
    delays = policy.delays(random.Random(seed))
    for _ in range(50):
        assert initial <= next(delays) <= policy.max_delay


@given(seed=st.integers())
def test_each_poll_delay_is_at_most_factor_times_the_previous(seed: int) -> None:
    delays = routing.PollPolicy(factor=2.0).delays(random.Random(seed))
    previous = next(delays)
    for _ in range(30):
        delay = next(delays)
        assert delay <= previous * 2.0
        previous = delay


@pytest.mark.parametrize(
    "kwargs",
    [{"initial_delay": 0}, {"initial_delay": 6, "max_delay": 5}, {"factor": 0.5}, {"timeout": -1}],
)
def test_poll_policy_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="PollPolicy"):
        routing.PollPolicy(**kwargs)


def test_poll_schedule_shortens_the_last_delay_to_the_deadline() -> None:
    clock = FakeClock()
    policy = routing.PollPolicy(timeout=2.5, initial_delay=1.0, max_delay=1.0)
    schedule = routing.PollSchedule(policy, rng=random.Random(0), clock=clock)
    assert schedule.next_delay() == 1.0
    clock.now += 2.0
    assert schedule.next_delay() == pytest.approx(0.5)
    clock.now += 0.5
    assert schedule.next_delay() is None


def test_poll_schedule_with_no_time_never_waits() -> None:
    schedule = routing.PollSchedule(routing.PollPolicy(timeout=0), clock=FakeClock())
    assert schedule.next_delay() is None


@given(seed=st.integers(), steps=st.lists(st.floats(min_value=0, max_value=3), max_size=30))
def test_poll_schedule_never_sleeps_past_its_deadline(seed: int, steps: list[float]) -> None:
    clock = FakeClock()
    schedule = routing.PollSchedule(
        routing.PollPolicy(timeout=10), rng=random.Random(seed), clock=clock
    )
    deadline = clock.now + 10
    for step in steps:
        clock.now += step
        delay = schedule.next_delay()
        if clock.now >= deadline:
            assert delay is None
        else:
            assert delay is not None
            assert 0 < delay <= deadline - clock.now
