from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    AuthData,
    SigningKey,
    TicketSigner,
    canonical_bytes,
    decode_signature,
    sign_ticket,
    verify_ticket_signature,
)

KEY = SigningKey.generate()

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
field_maps = st.dictionaries(st.text(max_size=12), json_values, max_size=8)


def ticket_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "cost": 100,
        "endpoint": "default",
        "reqnum": 7,
        "url": "http://127.0.0.1:3000",
        "request_idx": 1,
        "exp": 2_000_000_000,
        "kid": KEY.kid,
        "epoch": "0123456789abcdef",
    }
    return {**fields, **overrides}


def test_canonical_bytes_are_sorted_compact_json_without_the_signature() -> None:
    fields = {"url": "http://w", "cost": 5, "signature": "abc", "endpoint": "é"}
    assert canonical_bytes(fields) == '{"cost":5,"endpoint":"é","url":"http://w"}'.encode()


def test_canonical_bytes_refuse_non_finite_numbers() -> None:
    with pytest.raises(ValueError, match="JSON"):
        canonical_bytes({"cost": float("nan")})


@given(field_maps)
def test_canonical_bytes_do_not_depend_on_key_order(fields: dict[str, Any]) -> None:
    reordered = dict(reversed(list(fields.items())))
    assert canonical_bytes(reordered) == canonical_bytes(fields)


@given(field_maps)
def test_canonical_bytes_survive_a_trip_over_the_wire(fields: dict[str, Any]) -> None:
    received = json.loads(json.dumps(fields))
    assert canonical_bytes(received) == canonical_bytes(fields)


@given(field_maps)
def test_canonical_bytes_are_valid_utf8_json_of_the_same_fields(fields: dict[str, Any]) -> None:
    unsigned = {k: v for k, v in fields.items() if k != "signature"}
    assert json.loads(canonical_bytes(fields).decode("utf-8")) == unsigned


def test_a_signed_ticket_verifies_and_parses() -> None:
    ticket = sign_ticket(KEY.private_key, ticket_fields())
    assert verify_ticket_signature(KEY.public_key, ticket)
    assert AuthData.model_validate(ticket).reqnum == 7


def test_a_ticket_verifies_after_a_json_round_trip() -> None:
    ticket = sign_ticket(KEY.private_key, ticket_fields(cost=12.5))
    assert verify_ticket_signature(KEY.public_key, json.loads(json.dumps(ticket)))


@given(
    field=st.sampled_from(["cost", "endpoint", "reqnum", "url", "request_idx", "exp", "kid"]),
    value=json_scalars,
)
def test_changing_any_field_breaks_the_signature(field: str, value: Any) -> None:
    ticket = sign_ticket(KEY.private_key, ticket_fields())
    forged = {**ticket, field: value}
    if forged[field] == ticket[field] and type(forged[field]) is type(ticket[field]):
        return  # not a change
    assert not verify_ticket_signature(KEY.public_key, forged)


def test_adding_a_field_breaks_the_signature() -> None:
    ticket = sign_ticket(KEY.private_key, ticket_fields())
    assert not verify_ticket_signature(KEY.public_key, {**ticket, "extra": 1})


def test_an_integer_cost_sent_as_a_float_is_a_different_ticket() -> None:
    ticket = sign_ticket(KEY.private_key, ticket_fields(cost=100))
    assert not verify_ticket_signature(KEY.public_key, {**ticket, "cost": 100.0})


def test_another_keys_signature_does_not_verify() -> None:
    other = Ed25519PrivateKey.generate()
    ticket = sign_ticket(other, ticket_fields())
    assert not verify_ticket_signature(KEY.public_key, ticket)


@pytest.mark.parametrize("signature", [None, 5, "", "not base64!", "YWJj", "=" * 8])
def test_missing_or_garbled_signatures_do_not_verify(signature: Any) -> None:
    ticket = {**ticket_fields(), "signature": signature}
    assert not verify_ticket_signature(KEY.public_key, ticket)


def test_signing_refuses_non_finite_fields() -> None:
    with pytest.raises(ValueError, match="finite"):
        sign_ticket(KEY.private_key, ticket_fields(cost=float("inf")))


def test_decode_signature_is_strict_base64() -> None:
    assert decode_signature(base64.b64encode(b"xyz").decode()) == b"xyz"
    assert decode_signature("a b c") is None
    assert decode_signature("ü") is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("cost", "100"), ("reqnum", 1.5), ("reqnum", True), ("url", None), ("exp", "soon")],
)
def test_auth_data_rejects_wrong_json_types(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        AuthData.model_validate({**ticket_fields(), "signature": "x", field: value})


@given(
    st.dictionaries(
        st.text(alphabet=st.characters(max_codepoint=127), max_size=8),
        st.one_of(
            st.integers(min_value=-(2**70), max_value=2**70),
            st.text(alphabet=st.characters(max_codepoint=127), max_size=20),
            st.text(max_size=5),
            st.floats(allow_nan=False, allow_infinity=False),
            st.booleans(),
            st.none(),
        ),
        max_size=8,
    )
)
def test_canonical_bytes_are_exactly_the_documented_json(fields: dict[str, Any]) -> None:
    expected = json.dumps(
        {k: v for k, v in fields.items() if k != "signature"},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    assert canonical_bytes(fields) == expected


@given(field_maps)
def test_the_libsodium_signer_signs_exactly_as_cryptography_does(fields: dict[str, Any]) -> None:
    fields.pop("signature", None)
    expected = sign_ticket(KEY.private_key, fields)
    signed = TicketSigner(KEY.private_key).sign(dict(fields))
    assert signed == expected
    assert list(signed) == list(expected)  # the same field order on the wire too
    assert verify_ticket_signature(KEY.public_key, signed)


def test_the_libsodium_signer_refuses_non_finite_fields() -> None:
    with pytest.raises(ValueError, match="finite"):
        TicketSigner(KEY.private_key).sign(ticket_fields(cost=float("nan")))
