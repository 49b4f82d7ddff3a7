"""The /route/ answer: a `Ticket` kept exactly as signed, or `RouteWaiting`; parsed and written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from protocol import (
    RouteWaiting,
    SigningKey,
    Ticket,
    canonical_bytes,
    encode_route_answer,
    parse_route_answer,
    verify_ticket_signature,
)
from protocol.vast_tickets import VastVariant, sign_vast_ticket, verify_vast_signature

KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
NATIVE_ANSWER = (
    b'{"cost":50,"endpoint":"default","reqnum":1000001,"url":"http://10.0.0.1/a","request_idx":2,'
    b'"exp":1062,"kid":"56475aa75463474c","signature":"Z4N21b6u2guoxpB+q0Z2FsqKcYQ6nys/dv80b/GEoWsPf'
    b'EgMQMwczhfDpmHI4VtYhuAy1s73CyHSU+UEDfXaDA=="}'
)
"""A router's answer as it wrote it before `Ticket` existed (key: bytes 0..31, clock fixed)."""
WAITING_ANSWER = b'{"endpoint":"default","status":{"loading":1},"request_idx":1}'


def test_a_native_answer_round_trips_byte_for_byte_and_verifies() -> None:
    answer = parse_route_answer(json.loads(NATIVE_ANSWER))
    assert isinstance(answer, Ticket)
    assert encode_route_answer(answer) == NATIVE_ANSWER
    assert verify_ticket_signature(KEY.public_key, answer.auth_data())
    typed = (answer.url, answer.cost, answer.endpoint, answer.reqnum, answer.request_idx)
    assert typed == ("http://10.0.0.1/a", 50, "default", 1000001, 2)
    assert (answer.exp, answer.kid) == (1062, KEY.kid)


@pytest.mark.parametrize("cost", [100, 100.0, 2.5])
@pytest.mark.parametrize("variant", list(VastVariant))
def test_a_vast_ticket_keeps_its_json_types_order_and_unknown_fields(
    cost: float, variant: VastVariant
) -> None:
    """Vast signs `cost` as it is written (`100` is not `100.0`): what the client posts back is
    what was signed, every field in its place, and Vast's PyWorker still verifies it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fields = {"cost": cost, "endpoint": "e", "reqnum": 3, "url": "http://w:1", "request_idx": 9}
    signed = sign_vast_ticket(key, {**fields, "__request_id": "c0ffee"}, variant)
    answer = parse_route_answer(json.loads(json.dumps(signed)))  # as Vast's router sends it
    assert isinstance(answer, Ticket)
    posted = json.loads(json.dumps(answer.worker_body({"inputs": "hi"})))["auth_data"]
    assert list(posted.items()) == list(signed.items())
    assert type(posted["cost"]) is type(cost)
    assert verify_vast_signature(key.public_key(), posted, variant)
    assert (answer.exp, answer.kid) == (None, None)


def test_a_ticket_without_request_idx_is_still_a_ticket() -> None:
    """Vast's first routers named no request."""
    fields = {"signature": "c2ln", "cost": 1, "endpoint": "e", "reqnum": 1, "url": "http://w"}
    answer = parse_route_answer(fields)
    assert isinstance(answer, Ticket)
    assert answer.request_idx is None
    assert answer.auth_data() == fields


@given(
    extras=st.dictionaries(
        st.text(max_size=10).filter(lambda key: key not in json.loads(NATIVE_ANSWER)),
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        max_size=5,
    )
)
def test_unknown_fields_survive_the_round_trip_untouched(extras: dict[str, Any]) -> None:
    wire = {**json.loads(NATIVE_ANSWER), **extras}
    answer = parse_route_answer(wire)
    assert isinstance(answer, Ticket)
    assert list(answer.auth_data().items()) == list(wire.items())
    assert canonical_bytes(answer.auth_data()) == canonical_bytes(wire)


def test_the_waiting_answer_round_trips_byte_for_byte() -> None:
    answer = parse_route_answer(json.loads(WAITING_ANSWER))
    assert answer == RouteWaiting(endpoint="default", status={"loading": 1}, request_idx=1)
    assert encode_route_answer(answer) == WAITING_ANSWER


@pytest.mark.parametrize(
    "data",
    [
        [],
        "ticket",
        {"endpoint": "default"},
        {**json.loads(NATIVE_ANSWER), "url": 5},
        {**json.loads(NATIVE_ANSWER), "cost": "50"},
        {**json.loads(NATIVE_ANSWER), "cost": True},
        {**json.loads(NATIVE_ANSWER), "reqnum": 1.5},
        {key: value for key, value in json.loads(NATIVE_ANSWER).items() if key != "signature"},
    ],
)
def test_an_answer_that_is_neither_is_a_validation_error(data: object) -> None:
    with pytest.raises(ValidationError):
        parse_route_answer(data)


def test_a_ticket_is_its_own_copy_and_its_repr_hides_the_signature() -> None:
    fields = json.loads(NATIVE_ANSWER)
    ticket = Ticket(fields)
    fields["url"] = "http://elsewhere"
    ticket.auth_data()["cost"] = 1
    assert ticket == Ticket.parse(json.loads(NATIVE_ANSWER))
    assert ticket.worker_url("/generate") == "http://10.0.0.1/a/generate"
    assert "Z4N21b6u" not in repr(ticket)
    assert repr(ticket) == "Ticket(url='http://10.0.0.1/a', cost=50)"


def test_a_broken_ticket_is_never_taken_for_a_wait() -> None:
    # An answer that names a worker is a ticket: when it is not a valid one, the reason is the
    # ticket's, not a "poll again" that would have the client poll for ever.
    data = {**json.loads(NATIVE_ANSWER), "cost": "50", "status": "ok"}
    with pytest.raises(ValidationError, match="cost"):
        parse_route_answer(data)


def test_a_request_idx_beyond_64_bits_is_refused() -> None:
    with pytest.raises(ValidationError, match="request_idx"):
        parse_route_answer({"endpoint": "default", "status": {}, "request_idx": 2**200})
