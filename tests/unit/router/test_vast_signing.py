from __future__ import annotations

import os
from pathlib import Path

import pytest

from protocol import SigningKey
from protocol.vast_tickets import VastVariant, load_rsa_public_key, verify_vast_signature
from router.registry import WorkerRegistry
from router.tickets import TicketIssuer
from router.vast_signing import (
    RSA_KEY_FILE,
    VastSigner,
    load_or_create_rsa_key,
    variant_for_scheme,
)
from tests.unit.router.helpers import report


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> VastSigner:
    key = load_or_create_rsa_key(tmp_path_factory.mktemp("state"))
    return VastSigner(key, VastVariant.URL)


def test_the_scheme_names_map_to_vasts_variants() -> None:
    assert variant_for_scheme("vast") is VastVariant.LEGACY
    assert variant_for_scheme("vast-url") is VastVariant.URL
    assert variant_for_scheme("ed25519") is None


def test_the_key_is_created_private_and_kept(tmp_path: Path) -> None:
    first = load_or_create_rsa_key(tmp_path)
    again = load_or_create_rsa_key(tmp_path)
    assert first.private_numbers() == again.private_numbers()
    assert os.stat(tmp_path / RSA_KEY_FILE).st_mode & 0o777 == 0o600


def test_a_non_rsa_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / RSA_KEY_FILE).write_bytes(SigningKey.generate().to_pem())
    with pytest.raises(ValueError, match="RSA"):
        load_or_create_rsa_key(tmp_path)


@pytest.mark.parametrize("variant", list(VastVariant))
def test_vast_tickets_verify_against_the_published_pem(
    signer: VastSigner, variant: VastVariant
) -> None:
    signer = VastSigner(signer._private_key, variant)
    registry = WorkerRegistry(stale_after_s=20, settle_s=2)
    worker = registry.apply_report(report(), now=100.0)
    assert worker is not None
    issuer = TicketIssuer(SigningKey.generate(), registry, ttl_s=60, vast=signer)
    ticket = issuer.issue(worker, endpoint="default", cost=7.0, request_idx=3, now=100.0)
    public_key = load_rsa_public_key(signer.public_pem)
    assert verify_vast_signature(public_key, ticket, variant)
    assert "kid" not in ticket  # Vast tickets name no key
    assert (ticket["cost"], ticket["request_idx"], ticket["exp"]) == (7, 3, 160)
    assert worker.expected_load == 7.0
    moved = {**ticket, "url": "http://elsewhere:1"}
    assert not verify_vast_signature(public_key, moved, variant)
