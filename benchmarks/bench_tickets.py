"""Ticket checks per second on the PyWorker's hot path, against a bare Ed25519 verify.

    .venv/bin/python -m benchmarks.bench_tickets [--n 20000]

Anchor: `Ed25519PublicKey.verify` of the same canonical bytes (the cryptographic floor).
Measured: `TicketVerifier.verify` (field parsing, canonical JSON, signature, expiry, url,
endpoint, epoch, cost, replay window). The ratio shows what everything around the signature costs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from protocol import SigningKey, canonical_bytes, decode_signature, sign_ticket
from pyworker.tickets.verifier import TicketVerifier

URL = "http://127.0.0.1:3000"
EPOCH = "0123456789abcdef"


def per_second(run: Callable[[int], None], n: int) -> float:
    run(min(n, 200))  # warm-up
    started = time.perf_counter()
    run(n)
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    n = parser.parse_args().n
    key = SigningKey.generate()
    now = time.time()
    tickets = [
        sign_ticket(
            key.private_key,
            {
                "cost": 100,
                "endpoint": "default",
                "reqnum": i,
                "url": URL,
                "request_idx": i,
                "exp": now + 600,
                "kid": key.kid,
                "epoch": EPOCH,
            },
        )
        for i in range(n + 200)
    ]
    message, signature = canonical_bytes(tickets[0]), decode_signature(tickets[0]["signature"])
    assert signature is not None

    def bare_verify(count: int) -> None:
        for _ in range(count):
            key.public_key.verify(signature, message)

    verifier = TicketVerifier(
        URL, {key.kid: key.public_key}, endpoint="default", clock=time.time, epoch=EPOCH
    )
    remaining = iter(tickets)

    def full_check(count: int) -> None:
        for _ in range(count):
            verifier.verify(next(remaining), workload=100)

    anchor = per_second(bare_verify, n)
    measured = per_second(full_check, n)
    print(f"bare Ed25519 verify (anchor): {anchor:10.0f} /s")
    print(f"full ticket check:            {measured:10.0f} /s")
    print(f"ratio full/anchor: {measured / anchor:.2f}  (per-ticket cost {1e6 / measured:.1f} µs)")


if __name__ == "__main__":
    main()
