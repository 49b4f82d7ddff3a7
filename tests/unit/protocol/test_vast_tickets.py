from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.vast_tickets import (
    VastVariant,
    load_rsa_public_key,
    rsa_key_id,
    rsa_public_key_pem,
    sign_vast_ticket,
    vast_message,
    verify_vast_signature,
)

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
FIELDS: dict[str, Any] = {
    "cost": 100,
    "endpoint": "my-endpoint",
    "reqnum": 7,
    "url": "http://1.2.3.4:41234",
    "request_idx": 3,
}


def test_the_legacy_message_is_vasts_exact_bytes() -> None:
    # The PyWorker v2 dataclass order, indent=4, default separators: written out by hand.
    expected = (
        b"{\n"
        b'    "cost": 100,\n'
        b'    "endpoint": "my-endpoint",\n'
        b'    "reqnum": 7,\n'
        b'    "url": "http://1.2.3.4:41234"\n'
        b"}"
    )
    shuffled = dict(reversed(list(FIELDS.items())))
    assert vast_message(VastVariant.LEGACY, shuffled) == expected


def test_the_url_message_binds_only_the_url() -> None:
    expected = b'{\n    "url": "http://1.2.3.4:41234"\n}'
    assert vast_message(VastVariant.URL, FIELDS) == expected
    assert vast_message(VastVariant.URL, {"url": FIELDS["url"]}) == expected


def test_values_keep_their_json_types() -> None:
    as_int = vast_message(VastVariant.LEGACY, FIELDS)
    as_float = vast_message(VastVariant.LEGACY, {**FIELDS, "cost": 100.0})
    assert as_int != as_float
    assert b'"cost": 100.0' in as_float


def test_non_ascii_is_escaped_as_pythons_default() -> None:
    message = vast_message(VastVariant.LEGACY, {**FIELDS, "endpoint": "café"})
    assert b"caf\\u00e9" in message


@pytest.mark.parametrize("variant", list(VastVariant))
def test_a_signature_made_like_vasts_router_verifies(variant: VastVariant) -> None:
    # Sign independently of sign_vast_ticket, the way pycryptodome's pkcs1_15 + SHA256 would.
    raw = KEY.sign(vast_message(variant, FIELDS), padding.PKCS1v15(), hashes.SHA256())
    ticket = {**FIELDS, "signature": base64.b64encode(raw).decode()}
    assert verify_vast_signature(KEY.public_key(), ticket, variant)
    assert sign_vast_ticket(KEY, FIELDS, variant)["signature"] == ticket["signature"]


@pytest.mark.parametrize("variant", list(VastVariant))
def test_another_key_or_a_broken_signature_fails(variant: VastVariant) -> None:
    ticket = sign_vast_ticket(KEY, FIELDS, variant)
    assert not verify_vast_signature(OTHER.public_key(), ticket, variant)
    for bad in ("", "not base64!", base64.b64encode(b"x" * 256).decode(), None, 5):
        assert not verify_vast_signature(KEY.public_key(), {**ticket, "signature": bad}, variant)


def test_a_missing_signed_field_fails_instead_of_raising() -> None:
    ticket = sign_vast_ticket(KEY, FIELDS, VastVariant.LEGACY)
    del ticket["reqnum"]
    assert not verify_vast_signature(KEY.public_key(), ticket, VastVariant.LEGACY)


def test_the_url_variant_ignores_changes_to_unsigned_fields() -> None:
    ticket = sign_vast_ticket(KEY, FIELDS, VastVariant.URL)
    changed = {**ticket, "cost": 10**6, "reqnum": 1}
    assert verify_vast_signature(KEY.public_key(), changed, VastVariant.URL)
    assert not verify_vast_signature(KEY.public_key(), changed, VastVariant.LEGACY)


def test_pem_round_trip_and_a_stable_key_id() -> None:
    pem = rsa_public_key_pem(KEY.public_key())
    loaded = load_rsa_public_key(pem)
    assert rsa_key_id(loaded) == rsa_key_id(KEY.public_key()) != rsa_key_id(OTHER.public_key())
    assert len(rsa_key_id(loaded)) == 16


def test_an_ed25519_pem_is_not_an_rsa_key() -> None:
    from protocol import SigningKey, public_key_pem

    with pytest.raises(ValueError, match="RSA"):
        load_rsa_public_key(public_key_pem(SigningKey.generate().public_key))


json_values = st.one_of(
    st.integers(), st.text(max_size=12), st.floats(allow_nan=False, allow_infinity=False)
)


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(["cost", "endpoint", "reqnum", "url"]), value=json_values)
def test_tampering_with_any_legacy_field_breaks_the_signature(field: str, value: Any) -> None:
    ticket = sign_vast_ticket(KEY, FIELDS, VastVariant.LEGACY)
    tampered = {**ticket, field: value}
    same = json.dumps(value) == json.dumps(FIELDS[field])
    assert verify_vast_signature(KEY.public_key(), tampered, VastVariant.LEGACY) is same


scalars = st.one_of(
    st.text(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


@given(scalars, scalars, scalars, scalars)
def test_the_message_is_json_dumps_indent_4_for_any_values(
    cost: Any, endpoint: Any, reqnum: Any, url: Any
) -> None:
    fields = {"url": url, "reqnum": reqnum, "endpoint": endpoint, "cost": cost, "extra": 1}
    legacy = {name: fields[name] for name in ("cost", "endpoint", "reqnum", "url")}
    assert vast_message(VastVariant.LEGACY, fields) == json.dumps(legacy, indent=4).encode()
    assert vast_message(VastVariant.URL, fields) == json.dumps({"url": url}, indent=4).encode()
