from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol import SigningKey, verify_ticket_signature
from protocol.ticket_scheme import TicketScheme
from protocol.vast_tickets import verify_vast_signature
from router.keys.ring import KeyRing, RingKey
from router.keys.tickets import TicketIssuer
from router.routing.registry import WorkerRecord, WorkerRegistry
from tests.unit.router.helpers import report


def issuer_and_worker(
    key: SigningKey | KeyRing, scheme: TicketScheme = TicketScheme.ED25519
) -> tuple[TicketIssuer, WorkerRecord]:
    """An issuer of 60 s tickets signed with `key`, and the one worker of its registry (`w1`,
    reported at 100 s)."""
    registry = WorkerRegistry(stale_after_s=20, settle_s=2)
    worker = registry.apply_report(report(), now=100.0)
    assert worker is not None
    return TicketIssuer(key, registry, ttl_s=60, scheme=scheme), worker


def test_issued_tickets_are_signed_numbered_and_counted() -> None:
    key = SigningKey.generate()
    issuer, worker = issuer_and_worker(key)
    first = issuer.issue(worker, endpoint="default", cost=100.0, request_idx=1, now=100.0)
    second = issuer.issue(worker, endpoint="default", cost=2.5, request_idx=2, now=100.0)
    assert verify_ticket_signature(key.public_key, first.auth_data())
    assert first.cost == 100
    assert isinstance(first.cost, int)
    assert second.cost == 2.5
    assert second.reqnum == first.reqnum + 1
    assert (first.url, first.kid, first.exp) == (worker.url, key.kid, 160)
    assert worker.expected_load == 102.5


def test_a_ticket_is_written_exactly_as_before_tickets_were_typed() -> None:
    """Bytes a router wrote before `Ticket` existed, for the same key, worker and clock, plus
    the worker's `epoch` (signed since the PyWorker keeps tickets single-use across restarts)."""
    key = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
    registry = WorkerRegistry(stale_after_s=20, settle_s=2)
    worker = registry.apply_report(report(epoch="0f1e2d3c4b5a6978"), now=100.0)
    assert worker is not None
    issuer = TicketIssuer(key, registry, ttl_s=60)
    whole = issuer.issue(worker, endpoint="default", cost=100.0, request_idx=1, now=100.25)
    part = issuer.issue(worker, endpoint="default", cost=2.5, request_idx=2, now=100.25)
    assert whole.to_json() == (
        b'{"cost":100,"endpoint":"default","reqnum":100001,"url":"http://127.0.0.1/w1",'
        b'"request_idx":1,"exp":161,"kid":"56475aa75463474c","epoch":"0f1e2d3c4b5a6978",'
        b'"signature":"MdKDMDX2PslA21WfNJzAvYi6sAv7qNmTK8SuwCGKm1FAWuxlvBUPGw9rVo6SXTetYozy6zrL'
        b'V9RlCowwe7yKDA=="}'
    )
    assert part.to_json() == (
        b'{"cost":2.5,"endpoint":"default","reqnum":100002,"url":"http://127.0.0.1/w1",'
        b'"request_idx":2,"exp":161,"kid":"56475aa75463474c","epoch":"0f1e2d3c4b5a6978",'
        b'"signature":"dQonOR2aNv/gtgowpCgLUi9JswMrl0mS6BCrW12Wln3jVKduvACcNSm23POZiCCzAPmTp0ZM'
        b'QGnRaCBG/zNeDQ=="}'
    )
    assert all(verify_ticket_signature(key.public_key, t.auth_data()) for t in (whole, part))


@pytest.mark.parametrize("scheme", [TicketScheme.VAST, TicketScheme.VAST_URL])
def test_a_vast_ticket_carries_exactly_vasts_fields_in_vasts_order(scheme: TicketScheme) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer, worker = issuer_and_worker(KeyRing([RingKey(key, signs_from=0.0)], ttl_s=60), scheme)
    ticket = issuer.issue(worker, endpoint="default", cost=100.0, request_idx=1, now=100.25)
    sent = json.loads(ticket.to_json())
    assert list(sent) == ["cost", "endpoint", "reqnum", "url", "request_idx", "signature"]
    assert sent["cost"] == 100
    assert isinstance(sent["cost"], int)
    assert verify_vast_signature(key.public_key(), sent, scheme.vast_variant)
