from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import SigningKey, sign_ticket
from protocol.vast_tickets import rsa_key_id
from pyworker.tickets.verifier import TicketScheme
from tests.unit.pyworker.tickets.helpers import (
    ED_KEY,
    ED_OTHER,
    NOW,
    RSA_KEY,
    URL,
    issue,
    refused,
    verifier,
)


def test_a_valid_ticket_is_accepted() -> None:
    assert verifier().verify(issue(), workload=100).reqnum == 1


def test_the_url_may_differ_in_case_and_trailing_slash() -> None:
    assert verifier().verify(issue(url=URL.upper() + "/"), workload=1).url


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "malformed"),
        ("ticket", "malformed"),
        ({"signature": "x"}, "malformed"),
    ],
)
def test_malformed_tickets_are_401(raw: object, reason: str) -> None:
    error = refused(verifier(), raw)
    assert (error.status, error.reason) == (401, reason)


def test_a_missing_field_is_named() -> None:
    raw = issue()
    del raw["url"]
    error = refused(verifier(), raw)
    assert error.status == 401
    assert "url" in error.message


def test_an_unknown_key_is_401() -> None:
    raw = issue(other_key=True, kid=ED_OTHER.kid)
    error = refused(verifier(), raw)
    assert (error.status, error.reason) == (401, "unknown_key")


def test_a_forged_signature_is_401() -> None:
    raw = {**issue(), "cost": 1_000_000}
    error = refused(verifier(), raw)
    assert (error.status, error.reason) == (401, "bad_signature")


def test_a_key_id_swapped_onto_another_keys_signature_is_401() -> None:
    raw = issue(other_key=True)  # claims ED_KEY's kid
    assert refused(verifier(), raw).reason == "bad_signature"


def test_an_expired_ticket_is_401_after_the_skew_allowance() -> None:
    raw = issue(exp=NOW - 4)
    assert verifier().verify(raw, workload=1)
    error = refused(verifier(), issue(exp=NOW - 6, reqnum=2))
    assert (error.status, error.reason) == (401, "expired")


def test_a_ticket_for_another_worker_is_403() -> None:
    error = refused(verifier(), issue(url="http://127.0.0.1:3001"))
    assert (error.status, error.reason) == (403, "wrong_url")


def test_a_workload_above_the_cost_is_403() -> None:
    error = refused(verifier(), issue(cost=10), workload=11)
    assert (error.status, error.reason) == (403, "cost_too_low")
    assert "max_new_tokens" in error.message


def test_a_replayed_ticket_is_403() -> None:
    check = verifier()
    raw = issue()
    check.verify(raw, workload=1)
    error = refused(check, raw)
    assert (error.status, error.reason) == (403, "replayed")


def test_a_ticket_below_the_window_is_403() -> None:
    check = verifier(window=4)
    check.verify(issue(reqnum=100), workload=1)
    assert refused(check, issue(reqnum=90)).reason == "replayed"


def test_a_rejected_ticket_does_not_spend_its_reqnum() -> None:
    check = verifier()
    refused(check, issue(cost=1), workload=5)
    assert check.verify(issue(cost=5), workload=5).reqnum == 1


def test_new_keys_replace_old_ones() -> None:
    check = verifier()
    rotated = SigningKey.generate()
    check.set_keys({rotated.kid: rotated.public_key})
    assert check.known_kids == {rotated.kid}
    assert refused(check, issue()).reason == "unknown_key"


@given(
    field=st.sampled_from(["cost", "endpoint", "reqnum", "url", "request_idx", "exp", "kid"]),
    value=st.one_of(st.integers(), st.text(max_size=10), st.floats(allow_nan=False)),
)
def test_any_tampered_ticket_is_refused_and_spends_nothing(field: str, value: Any) -> None:
    check = verifier()
    genuine = issue()
    tampered = {**genuine, field: value}
    if tampered[field] == genuine[field] and type(value) is type(genuine[field]):
        return
    error = refused(check, tampered, workload=1)
    assert error.status in (401, 403)
    assert check.verify(genuine, workload=1).reqnum == 1


def test_each_key_has_its_own_reqnums_as_routers_that_share_no_state_sign() -> None:
    # Two routers, each with its own key, number this worker's tickets each from 1.
    check = verifier()
    check.set_keys({**check.current_keys(), ED_OTHER.kid: ED_OTHER.public_key})
    other = sign_ticket(
        ED_OTHER.private_key,
        {**{k: v for k, v in issue().items() if k != "signature"}, "kid": ED_OTHER.kid},
    )
    assert check.verify(issue(), workload=1).kid == ED_KEY.kid
    assert check.verify(other, workload=1).kid == ED_OTHER.kid
    assert refused(check, issue()).reason == "replayed"
    assert refused(check, other).reason == "replayed"


@pytest.mark.parametrize("scheme", [TicketScheme.VAST, TicketScheme.VAST_URL])
def test_a_vast_ticket_is_counted_in_the_window_of_the_key_that_verified_it(
    scheme: TicketScheme,
) -> None:
    check = verifier(scheme)
    assert check.verify(issue(scheme), workload=1).kid == rsa_key_id(RSA_KEY.public_key())
    assert refused(check, issue(scheme)).reason == "replayed"
