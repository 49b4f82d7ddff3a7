"""The identity book: the join tokens not yet used, and the workers registered with a credential.

Pure state with an injected `now`: no I/O, no clock reads. Only digests are kept
(`router.identity.tokens`). A join token is bound to an endpoint, and optionally to one worker
id (a provider's, for the worker it starts); it is used once, and not after `expires_at`.
Redeeming it registers the worker that presented it: its id, endpoint and url, and the digest of
a new credential, handed back to the worker once. A registered worker keeps its url and
endpoint; it leaves the book when it leaves the registry (`forget`), or with its endpoint.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from router.errors import Forbidden, Unauthorized
from router.identity.tokens import digest, new_credential, new_join_token

__all__ = ["IdentityBook", "JoinToken", "StoredIdentities", "WorkerIdentity"]


class JoinToken(BaseModel):
    """One join token, as kept: the digest of the secret, and what it is good for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    digest: str
    endpoint: str
    worker_id: str | None = Field(default=None, description="None: any id not registered yet")
    expires_at: float


class WorkerIdentity(BaseModel):
    """A registered worker: what it may report as, and the digest of its credential."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    worker_id: str
    endpoint: str
    url: str
    credential_digest: str


class StoredIdentities(BaseModel):
    """The book as its file holds it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    join_tokens: list[JoinToken] = Field(default_factory=list)
    workers: list[WorkerIdentity] = Field(default_factory=list)


class IdentityBook:
    def __init__(self, stored: StoredIdentities | None = None) -> None:
        stored = stored or StoredIdentities()
        self._tokens = {token.digest: token for token in stored.join_tokens}
        self._workers = {worker.worker_id: worker for worker in stored.workers}
        self._by_credential = {worker.credential_digest: worker for worker in stored.workers}

    def stored(self) -> StoredIdentities:
        return StoredIdentities(
            join_tokens=list(self._tokens.values()), workers=list(self._workers.values())
        )

    def mint(self, endpoint: str, *, now: float, ttl_s: float, worker_id: str | None = None) -> str:
        """A new join token for `endpoint` (and only for `worker_id`, when given), good until
        `now + ttl_s`. The secret is returned, never kept."""
        self._drop_expired(now)
        token = new_join_token()
        kept = JoinToken(
            digest=digest(token), endpoint=endpoint, worker_id=worker_id, expires_at=now + ttl_s
        )
        self._tokens[kept.digest] = kept
        return token

    def join_token(self, presented: str, now: float) -> JoinToken:
        """The unused, unexpired join token `presented` is; Unauthorized otherwise."""
        token = self._tokens.get(digest(presented))
        if token is None or token.expires_at <= now:
            raise Unauthorized(
                "this join token is unknown, used or expired: a join token registers one "
                "worker once; get a new one (`tgi-serverless endpoints join-token NAME`)"
            )
        return token

    def holder(self, presented: str) -> WorkerIdentity:
        """The worker whose credential `presented` is; Unauthorized otherwise."""
        worker = self._by_credential.get(digest(presented))
        if worker is None:
            raise Unauthorized(
                "unknown worker credential: this router has no worker registered with it "
                "(any more); start the worker again with a new join token"
            )
        return worker

    def get(self, worker_id: str) -> WorkerIdentity | None:
        return self._workers.get(worker_id)

    def count(self, endpoint: str) -> int:
        return sum(1 for worker in self._workers.values() if worker.endpoint == endpoint)

    def check_register(self, token: JoinToken, *, worker_id: str, max_workers: int) -> None:
        """Forbidden unless `token` may register `worker_id`: a token bound to one worker id
        registers that id only, and replaces its registration (its provider started it
        again); any other may not take an id that is registered, nor a place beyond the
        endpoint's `max_workers`."""
        if token.worker_id is not None and token.worker_id != worker_id:
            raise Forbidden(
                f"this join token is for worker {token.worker_id!r}: report as that worker"
            )
        registered = self._workers.get(worker_id)
        if registered is not None and token.worker_id is None:
            raise Forbidden(
                f"worker id {worker_id!r} is registered already: give this worker another id "
                "(CONTAINER_ID or --worker-id)"
            )
        if registered is None and self.count(token.endpoint) >= max_workers:
            raise Forbidden(
                f"endpoint {token.endpoint!r} has {max_workers} workers registered, its most "
                "(TGIS_MAX_WORKERS_PER_ENDPOINT): stop one first"
            )

    def register(
        self, token: JoinToken, *, worker_id: str, url: str, max_workers: int
    ) -> tuple[WorkerIdentity, str]:
        """Use `token` up to register `worker_id` at `url` on the token's endpoint (see
        `check_register`); the new identity and its credential (the only time the secret
        exists outside the worker)."""
        self.check_register(token, worker_id=worker_id, max_workers=max_workers)
        credential = new_credential()
        worker = WorkerIdentity(
            worker_id=worker_id,
            endpoint=token.endpoint,
            url=url,
            credential_digest=digest(credential),
        )
        del self._tokens[token.digest]
        self.forget(worker_id)
        self._workers[worker_id] = worker
        self._by_credential[worker.credential_digest] = worker
        return worker, credential

    def forget(self, worker_id: str) -> bool:
        """The worker is gone: its credential speaks for nobody from now on. True if it was
        registered."""
        worker = self._workers.pop(worker_id, None)
        if worker is None:
            return False
        del self._by_credential[worker.credential_digest]
        return True

    def forget_endpoint(self, endpoint: str) -> bool:
        """The endpoint is deleted: its workers and its join tokens go. True if any did."""
        tokens = [key for key, token in self._tokens.items() if token.endpoint == endpoint]
        for key in tokens:
            del self._tokens[key]
        workers = [w.worker_id for w in self._workers.values() if w.endpoint == endpoint]
        for worker_id in workers:
            self.forget(worker_id)
        return bool(tokens or workers)

    def _drop_expired(self, now: float) -> None:
        for key in [key for key, token in self._tokens.items() if token.expires_at <= now]:
            del self._tokens[key]
