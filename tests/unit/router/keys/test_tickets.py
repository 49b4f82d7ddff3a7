from __future__ import annotations

from protocol import SigningKey, verify_ticket_signature
from router.keys.tickets import TicketIssuer
from router.routing.registry import WorkerRegistry
from tests.unit.router.helpers import report


def test_issued_tickets_are_signed_numbered_and_counted() -> None:
    key = SigningKey.generate()
    registry = WorkerRegistry(stale_after_s=20, settle_s=2)
    worker = registry.apply_report(report(), now=100.0)
    assert worker is not None
    issuer = TicketIssuer(key, registry, ttl_s=60)
    first = issuer.issue(worker, endpoint="default", cost=100.0, request_idx=1, now=100.0)
    second = issuer.issue(worker, endpoint="default", cost=2.5, request_idx=2, now=100.0)
    assert verify_ticket_signature(key.public_key, first)
    assert first["cost"] == 100
    assert isinstance(first["cost"], int)
    assert second["cost"] == 2.5
    assert second["reqnum"] == first["reqnum"] + 1
    assert (first["url"], first["kid"], first["exp"]) == (worker.url, key.kid, 160)
    assert worker.expected_load == 102.5
