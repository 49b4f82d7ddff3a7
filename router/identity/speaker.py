"""Who a worker's request speaks as, and what it may say: pure checks over the identity book.

A worker presents one secret (`Authorization: Bearer`, or Vast's `mtoken` in the body):

    tgis-worker-...   its credential: it speaks as the worker registered with it, and only
                      for that worker (its id, its endpoint, its url)
    tgis-join-...     a join token: it registers (on a status report only)
    anything else     anonymous, accepted only with `allow_anonymous_workers` (and then only
                      the shared worker token, when one is set); it may speak for any worker
                      that is not registered with a credential: it is bound to nothing

Each refusal is a router error (401 for a secret that proves nothing, 403 for a worker that
speaks for another or would change what it registered) whose message says what to change.
"""

from __future__ import annotations

from dataclasses import dataclass

from router.credentials import same_secret
from router.errors import Forbidden, Unauthorized
from router.identity.book import IdentityBook, JoinToken, WorkerIdentity
from router.identity.tokens import CREDENTIAL_PREFIX, JOIN_PREFIX
from router.settings import RouterSettings

__all__ = ["AnonymousWorkers", "Speaker", "check_release", "check_report", "identify"]


@dataclass(frozen=True)
class AnonymousWorkers:
    """Whether workers may report without a credential, and the shared token they then need
    ("" for none)."""

    allowed: bool
    shared_token: str

    @classmethod
    def of(cls, settings: RouterSettings) -> AnonymousWorkers:
        return cls(
            allowed=settings.allow_anonymous_workers,
            shared_token=settings.worker_token.get_secret_value(),
        )


@dataclass(frozen=True)
class Speaker:
    """A registered worker (`worker`), a worker registering (`join`), or neither: anonymous."""

    worker: WorkerIdentity | None = None
    join: JoinToken | None = None


def identify(
    book: IdentityBook, presented: str, anonymous: AnonymousWorkers, now: float
) -> Speaker:
    """Who presents `presented`; Unauthorized when it proves nobody."""
    if presented.startswith(CREDENTIAL_PREFIX):
        return Speaker(worker=book.holder(presented))
    if presented.startswith(JOIN_PREFIX):
        return Speaker(join=book.join_token(presented, now))
    if not anonymous.allowed:
        raise Unauthorized(
            "a worker registers with a join token (TGIS_JOIN_TOKEN, as `Authorization: "
            "Bearer`), then reports with the credential the router answers; anonymous "
            "workers are off (TGIS_ALLOW_ANONYMOUS_WORKERS)"
        )
    if anonymous.shared_token and not same_secret(presented, anonymous.shared_token):
        raise Unauthorized("status report without the right worker token")
    return Speaker()


def check_report(
    speaker: Speaker, book: IdentityBook, *, worker_id: str, endpoint: str, url: str
) -> None:
    """A report from `speaker` may name this worker, endpoint and url; Forbidden otherwise."""
    if speaker.worker is not None:
        _same_worker(speaker.worker, worker_id)
        if endpoint != speaker.worker.endpoint:
            raise Forbidden(
                f"worker {worker_id!r} is registered on endpoint {speaker.worker.endpoint!r}: "
                "report that endpoint (a worker for another endpoint needs its own join token)"
            )
        if url != speaker.worker.url:
            raise Forbidden(
                f"worker {worker_id!r} is registered at url {speaker.worker.url!r}: report that "
                "url (a worker's url cannot change; start it again with a new join token)"
            )
    elif speaker.join is not None:
        if endpoint != speaker.join.endpoint:
            raise Forbidden(
                f"this join token is for endpoint {speaker.join.endpoint!r}: report that "
                "endpoint (TGIS_ENDPOINT), or get a join token for the other one"
            )
    else:
        _not_registered(book, worker_id)


def check_release(speaker: Speaker, book: IdentityBook, worker_id: str) -> None:
    """`speaker` may say which of `worker_id`'s requests ended; Forbidden (or Unauthorized for
    a join token: register first) otherwise."""
    if speaker.join is not None:
        raise Unauthorized(
            "a join token only registers: report status first, then use the credential the "
            "router answers"
        )
    if speaker.worker is not None:
        _same_worker(speaker.worker, worker_id)
    else:
        _not_registered(book, worker_id)


def _same_worker(worker: WorkerIdentity, worker_id: str) -> None:
    if worker_id != worker.worker_id:
        raise Forbidden(
            f"this credential is worker {worker.worker_id!r}'s: it speaks for that worker "
            f"only, not for {worker_id!r}"
        )


def _not_registered(book: IdentityBook, worker_id: str) -> None:
    if book.get(worker_id) is not None:
        raise Forbidden(
            f"worker {worker_id!r} is registered with its own credential: only it may speak "
            "for itself"
        )
