"""Generated attacks on every ticket scheme: each is refused for its reason, and spends nothing."""

from __future__ import annotations

import base64
import contextlib
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from protocol.tickets import REQNUM_LIMIT, TICKET_NUMBER_LIMIT
from protocol.vast_tickets import sign_vast_ticket
from pyworker.errors import TicketRejected
from pyworker.tickets.verifier import TicketScheme, TicketVerifier
from tests.unit.pyworker.tickets.helpers import (
    ENDPOINT,
    NOW,
    RSA_KEY,
    SKEW,
    URL,
    VARIANT,
    issue,
    refused,
    verifier,
)

SIGNED_FIELDS = {
    TicketScheme.ED25519: ["cost", "endpoint", "reqnum", "url", "request_idx", "exp", "kid"],
    TicketScheme.VAST: ["cost", "endpoint", "reqnum", "url"],
    TicketScheme.VAST_URL: ["url"],
}
schemes = st.sampled_from(list(TicketScheme))


def still_accepts_a_fresh_ticket(check: TicketVerifier, scheme: TicketScheme, reqnum: int) -> None:
    assert check.verify(issue(scheme, reqnum=reqnum), workload=1).reqnum == reqnum


@pytest.mark.parametrize("scheme", list(TicketScheme))
def test_a_genuine_ticket_passes_every_scheme(scheme: TicketScheme) -> None:
    assert verifier(scheme).verify(issue(scheme, reqnum=9), workload=100).reqnum == 9


json_values = st.one_of(
    st.integers(-(10**6), 10**6), st.text(max_size=8), st.floats(-1e6, 1e6, allow_nan=False)
)


@settings(max_examples=80, deadline=None)
@given(scheme=schemes, data=st.data())
def test_forged_tickets_are_refused(scheme: TicketScheme, data: st.DataObject) -> None:
    genuine = issue(scheme, reqnum=5)
    how = data.draw(st.sampled_from(["tamper", "signature", "other_key"]))
    if how == "tamper":
        field = data.draw(st.sampled_from(SIGNED_FIELDS[scheme]))
        value = data.draw(json_values)
        assume(not (value == genuine[field] and type(value) is type(genuine[field])))
        forged = {**genuine, field: value}
    elif how == "signature":
        raw = bytearray(base64.b64decode(genuine["signature"]))
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] ^= data.draw(st.integers(1, 255))
        forged = {**genuine, "signature": base64.b64encode(bytes(raw)).decode()}
    else:
        forged = issue(scheme, other_key=True, reqnum=5)
    check = verifier(scheme)
    error = refused(check, forged)
    assert error.status in (401, 403)
    if how != "tamper":
        assert (error.status, error.reason) == (401, "bad_signature")
    still_accepts_a_fresh_ticket(check, scheme, 5)  # the forgery spent nothing


@settings(max_examples=40, deadline=None)
@given(
    scheme=schemes,
    reqnums=st.lists(st.integers(1, 60), min_size=1, max_size=20, unique=True),
    data=st.data(),
)
def test_replays_are_refused_in_any_arrival_order(
    scheme: TicketScheme, reqnums: list[int], data: st.DataObject
) -> None:
    check = verifier(scheme)
    tickets = {n: issue(scheme, reqnum=n) for n in reqnums}
    for n in reqnums:  # out of order, all within the window: each is accepted once
        assert check.verify(tickets[n], workload=1).reqnum == n
    replayed = data.draw(st.sampled_from(reqnums))
    error = refused(check, tickets[replayed])
    assert (error.status, error.reason) == (403, "replayed")


@settings(max_examples=40, deadline=None)
@given(scheme=schemes, late_by=st.floats(min_value=0.001, max_value=1e6))
def test_expired_tickets_are_refused(scheme: TicketScheme, late_by: float) -> None:
    check = verifier(scheme)
    error = refused(check, issue(scheme, exp=NOW - SKEW - late_by))
    assert (error.status, error.reason) == (401, "expired")
    still_accepts_a_fresh_ticket(check, scheme, 1)


@settings(max_examples=40, deadline=None)
@given(
    scheme=schemes,
    host=st.from_regex(r"[a-z0-9]{1,12}(\.[a-z0-9]{1,8}){0,3}", fullmatch=True),
    port=st.integers(1, 65535),
)
def test_tickets_for_another_worker_are_refused(scheme: TicketScheme, host: str, port: int) -> None:
    url = f"http://{host}:{port}"
    assume(url != URL)
    check = verifier(scheme)
    error = refused(check, issue(scheme, url=url))
    assert (error.status, error.reason) == (403, "wrong_url")
    still_accepts_a_fresh_ticket(check, scheme, 1)


@settings(max_examples=40, deadline=None)
@given(scheme=schemes, cost=st.integers(0, 10_000), excess=st.integers(1, 10_000))
def test_a_workload_over_the_signed_cost_is_refused(
    scheme: TicketScheme, cost: int, excess: int
) -> None:
    check = verifier(scheme)
    error = refused(check, issue(scheme, cost=cost), workload=cost + excess)
    assert (error.status, error.reason) == (403, "cost_too_low")
    still_accepts_a_fresh_ticket(check, scheme, 1)


@pytest.mark.parametrize("scheme", [TicketScheme.VAST, TicketScheme.VAST_URL])
def test_vast_tickets_may_omit_kid_exp_and_request_idx(scheme: TicketScheme) -> None:
    fields = {"cost": 10, "endpoint": ENDPOINT, "reqnum": 3, "url": URL}
    ticket = sign_vast_ticket(RSA_KEY, fields, VARIANT[scheme])
    assert verifier(scheme).verify(ticket, workload=10).exp is None


@pytest.mark.parametrize(
    ("scheme", "make"),
    [
        (TicketScheme.VAST, lambda: {"cost": 1}),
        (TicketScheme.VAST, lambda: issue(TicketScheme.ED25519)),  # Ed25519 ticket, RSA worker
        (TicketScheme.ED25519, lambda: issue(TicketScheme.VAST)),  # no kid
    ],
)
def test_tickets_of_the_wrong_shape_are_malformed_or_unsigned(
    scheme: TicketScheme, make: Callable[[], Any]
) -> None:
    error = refused(verifier(scheme), make())
    assert error.status == 401
    assert error.reason in ("malformed", "bad_signature")


def test_a_vast_worker_without_a_key_says_so() -> None:
    check = TicketVerifier(URL, {}, endpoint="e", clock=lambda: NOW, scheme=TicketScheme.VAST)
    assert refused(check, issue(TicketScheme.VAST)).reason == "unknown_key"


@settings(max_examples=40, deadline=None)
@given(scheme=schemes, endpoint=st.text(max_size=12))
def test_tickets_for_another_endpoint_are_refused(scheme: TicketScheme, endpoint: str) -> None:
    assume(endpoint != ENDPOINT)
    check = verifier(scheme)
    error = refused(check, issue(scheme, endpoint=endpoint))
    assert (error.status, error.reason) == (403, "wrong_endpoint")
    assert repr(endpoint) in error.message
    still_accepts_a_fresh_ticket(check, scheme, 1)


NUMERIC_FIELDS = ["cost", "exp", "reqnum", "request_idx"]
any_number = st.one_of(st.integers(min_value=-(2**2000), max_value=2**2000), st.floats())


@settings(max_examples=150, deadline=None)
@given(scheme=schemes, field=st.sampled_from(NUMERIC_FIELDS), value=any_number)
def test_any_number_in_any_field_is_answered_never_an_internal_error(
    scheme: TicketScheme, field: str, value: float
) -> None:
    """Signed by the scheme's own key, so only the range checks stand between a number and
    the comparisons after the signature (Vast's schemes leave `exp`, and `vast-url` also
    `cost` and `reqnum`, to whoever holds a ticket): each ends in an answer, not an exception.
    NaN and infinities arrive through Python's JSON reader; the native scheme cannot sign them."""
    assume(scheme.uses_rsa or isinstance(value, int) or math.isfinite(value))
    check = verifier(scheme)
    overrides: dict[str, Any] = {field: value}
    ticket = issue(scheme, **overrides)
    try:
        check.verify(ticket, workload=1)
    except TicketRejected as error:
        refusal = error
    else:
        return
    assert refusal.status in (401, 403)
    still_accepts_a_fresh_ticket(check, scheme, 1)  # and the refusal spent nothing


@settings(max_examples=60, deadline=None)
@given(scheme=schemes, field=st.sampled_from(NUMERIC_FIELDS), excess=st.integers(1, 2**300))
def test_numbers_out_of_range_are_malformed_and_named(
    scheme: TicketScheme, field: str, excess: int
) -> None:
    limit = REQNUM_LIMIT if field in ("reqnum", "request_idx") else TICKET_NUMBER_LIMIT
    for value in (limit - 1 + excess, -excess):
        overrides: dict[str, Any] = {field: value}
        error = refused(verifier(scheme), issue(scheme, **overrides))
        assert (error.status, error.reason) == (401, "malformed")
        assert field in error.message


@settings(max_examples=60, deadline=None)
@given(
    huge=st.integers(min_value=2**20, max_value=2**300),
    genuine=st.lists(st.integers(1, 10**6), min_size=1, max_size=10, unique=True),
)
def test_one_vast_url_ticket_with_a_huge_reqnum_locks_nobody_out(
    huge: int, genuine: list[int]
) -> None:
    """`vast-url` signs only the url: a holder may write any reqnum. One far ahead of every
    genuine ticket (accepted when in range, refused when not) leaves genuine tickets served."""
    check = verifier(TicketScheme.VAST_URL)
    with contextlib.suppress(TicketRejected):
        check.verify(issue(TicketScheme.VAST_URL, reqnum=huge), workload=1)
    for reqnum in genuine:
        still_accepts_a_fresh_ticket(check, TicketScheme.VAST_URL, reqnum)


def test_below_the_window_stays_refused_where_the_reqnum_is_signed() -> None:
    for scheme in (TicketScheme.ED25519, TicketScheme.VAST):
        check = verifier(scheme, window=4)
        check.verify(issue(scheme, reqnum=100), workload=1)
        assert refused(check, issue(scheme, reqnum=90)).reason == "replayed"
