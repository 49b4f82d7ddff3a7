"""The router's settings: one typed object, built at start-up from flags and `TGIS_` variables.

Every field names its variable (common.settings: only those names are read, exactly as
spelled); docs/router.md's table lists them all, and a test compares the two.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, FilePath, SecretStr, model_validator

from common.settings import ServiceSettings
from httpedge.connections import ConnectionLimits, limit_field
from protocol.ticket_scheme import TicketScheme

__all__ = ["RouterSettings", "default_state_dir"]


def default_state_dir() -> Path:
    return Path.home() / ".local" / "state" / "tgi-serverless"


class RouterSettings(ServiceSettings):
    host: str = Field(default="127.0.0.1", validation_alias="TGIS_ROUTER_HOST")
    port: int = Field(default=8080, ge=0, le=65535, validation_alias="TGIS_ROUTER_PORT")
    state_dir: Path = Field(default_factory=default_state_dir, validation_alias="TGIS_STATE_DIR")
    endpoint: str = Field(default="default", min_length=1, validation_alias="TGIS_ENDPOINT")
    api_key: SecretStr = Field(default=SecretStr(""), validation_alias="TGIS_API_KEY")
    worker_token: SecretStr = Field(default=SecretStr(""), validation_alias="TGIS_WORKER_TOKEN")
    """The shared token of anonymous workers (Vast's PyWorker sends it as `mtoken`); bound to no
    worker, so it needs `allow_anonymous_workers`."""
    allow_anonymous_workers: bool = Field(
        default=False, validation_alias="TGIS_ALLOW_ANONYMOUS_WORKERS"
    )
    """Accept reports from workers without a credential of their own (with the shared
    `worker_token` when one is set, else from anyone): they may speak for any worker that is
    not registered with a credential. Off: every worker registers with a join token."""
    join_token_ttl_s: float = Field(
        default=3600.0, gt=0.0, le=30 * 86_400.0, validation_alias="TGIS_JOIN_TOKEN_TTL_S"
    )
    max_workers_per_endpoint: int = Field(
        default=1024, ge=1, le=1_000_000, validation_alias="TGIS_MAX_WORKERS_PER_ENDPOINT"
    )
    allow_private_workers: bool = Field(
        default=False, validation_alias="TGIS_ALLOW_PRIVATE_WORKERS"
    )
    """The settings' endpoint accepts workers on loopback, private and link-local addresses
    (set at every start; `up` sets it for its local workers)."""
    admin_key: SecretStr = Field(default=SecretStr(""), validation_alias="TGIS_ADMIN_KEY")
    """Guards the management API (/api/v0/...), the autoscaler's routes, /status and /ui; unset:
    they answer 401 to everyone (but see public_status)."""
    public_status: bool = Field(default=False, validation_alias="TGIS_PUBLIC_STATUS")
    """Answer the read-only status routes (/status, /ui, GET /autoscaler*) without the admin key:
    for a router on a private network only, as they name every worker and its URL."""
    metrics_address: str | None = Field(
        default=None,
        pattern=r"^\[?[^\s\[\]]+\]?:[0-9]{1,5}$",
        validation_alias="TGIS_METRICS_ADDRESS",
    )
    """HOST:PORT to serve /metrics on, apart from the main port (which then has no /metrics)."""
    tls_cert: Path | None = Field(default=None, validation_alias="TGIS_TLS_CERT")
    """Serve HTTPS with this certificate (PEM, chain included) and tls_key; both or neither
    (`router.tls.server_ssl_context` refuses one alone)."""
    tls_key: Path | None = Field(default=None, validation_alias="TGIS_TLS_KEY")
    ticket_scheme: TicketScheme = Field(
        default=TicketScheme.ED25519, validation_alias="TGIS_TICKET_SCHEME"
    )
    """ed25519: native; vast: RSA over cost/endpoint/reqnum/url (Vast PyWorker v2); vast-url: RSA
    over {url} only (the `vastai` package's PyWorker). Same names as the worker's setting."""
    key_rotation_s: float = Field(
        default=0.0, ge=0.0, le=365 * 86_400.0, validation_alias="TGIS_KEY_ROTATION_S"
    )
    """Rotate the signing key this often (0: only when asked, POST /api/v0/keys/rotate)."""
    key_lead_s: float = Field(default=60.0, ge=0.0, le=86_400.0, validation_alias="TGIS_KEY_LEAD_S")
    """How long a new key is published before it signs."""
    ticket_ttl_s: float = Field(
        default=60.0, gt=0.0, le=3600.0, validation_alias="TGIS_TICKET_TTL_S"
    )
    route_timeout_s: float = Field(
        default=10.0, ge=0.0, le=600.0, validation_alias="TGIS_ROUTE_TIMEOUT_S"
    )
    max_waiting_routes: int = Field(
        default=1000, ge=0, le=1_000_000, validation_alias="TGIS_MAX_WAITING_ROUTES"
    )
    no_worker_reply: Literal["poll", "retry"] = Field(
        default="poll", validation_alias="TGIS_NO_WORKER_REPLY"
    )
    """After route_timeout_s with no worker: `poll` answers Vast's {endpoint, status,
    request_idx} (200, poll again with the same request_idx); `retry` answers 503 Retry-After.
    `/route/` only: gateway mode answers 503 `no_worker` either way (its clients cannot poll)."""
    affinity_max_wait_s: float = Field(
        default=10.0, ge=0.0, le=3600.0, validation_alias="TGIS_AFFINITY_MAX_WAIT_S"
    )
    """A session keeps its worker while that worker's expected wait is at most this."""
    max_sessions: int = Field(
        default=100_000, ge=0, le=10_000_000, validation_alias="TGIS_MAX_SESSIONS"
    )
    reqnum_block: int = Field(default=100_000, ge=1, validation_alias="TGIS_REQNUM_BLOCK")
    state_url: str | None = Field(
        default=None, pattern=r"^rediss?://[^\s]+$", validation_alias="TGIS_STATE_URL"
    )
    """redis://HOST:PORT/DB: share endpoints, keys, reqnums, workers and load with the other
    routers on this Redis (docs/scaleout.md). Unset: everything in memory and the state dir."""
    state_secret: SecretStr = Field(default=SecretStr(""), validation_alias="TGIS_STATE_SECRET")
    """With `state_url`: the key-encryption secret (32 characters or more, the same on every
    router). Private signing keys and endpoints' API keys are sealed with a key derived from it,
    so a Redis reader without it can neither sign nor call an endpoint."""
    state_flush_s: float = Field(default=1.0, gt=0.0, le=1.0, validation_alias="TGIS_STATE_FLUSH_S")
    """With `state_url`: how often a router pushes its reports and in-flight load to Redis and
    takes in the others' (at most 1 s)."""
    state_reqnum_block: int = Field(
        default=64, ge=1, le=4096, validation_alias="TGIS_STATE_REQNUM_BLOCK"
    )
    """With `state_url`: reqnums a router reserves per worker per Redis increment."""
    accept_unknown_workers: bool = Field(
        default=True, validation_alias="TGIS_ACCEPT_UNKNOWN_WORKERS"
    )
    """False: a status report from a worker id the router did not start is refused (403)."""
    worker_stale_s: float = Field(default=20.0, gt=0.0, validation_alias="TGIS_WORKER_STALE_S")
    ticket_settle_s: float = Field(default=2.0, ge=0.0, validation_alias="TGIS_TICKET_SETTLE_S")
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, validation_alias="TGIS_ROUTER_MAX_BODY_BYTES"
    )
    # What one client's connections may take (docs/reliability.md, Hostile clients)
    header_timeout_s: float = limit_field("TGIS_ROUTER_", "header_timeout_s")
    body_timeout_s: float = limit_field("TGIS_ROUTER_", "body_timeout_s")
    send_timeout_s: float = limit_field("TGIS_ROUTER_", "send_timeout_s")
    keepalive_timeout_s: float = limit_field("TGIS_ROUTER_", "keepalive_timeout_s")
    max_connections: int = limit_field("TGIS_ROUTER_", "max_connections")
    max_header_bytes: int = limit_field("TGIS_ROUTER_", "max_header_bytes")
    # Vast.ai compatibility (docs/vast.md)
    vast_route_wait_s: float = Field(
        default=5.0,
        ge=0.0,
        le=9.0,
        validation_alias="TGIS_VAST_ROUTE_WAIT_S",
        description="longest /route/ wait for Vast's client, which gives up after 10 s",
    )
    vast_root_ca_file: FilePath | None = Field(
        default=None,
        validation_alias="TGIS_VAST_ROOT_CA",
        description="CA certificate Vast's client should trust (default: the system's bundle); "
        "a file that must exist when the router starts",
    )
    # Gateway mode (router/gateway/proxy.py)
    gateway_max_attempts: int = Field(
        default=3, ge=1, le=10, validation_alias="TGIS_GATEWAY_MAX_ATTEMPTS"
    )
    gateway_connect_timeout_s: float = Field(
        default=10.0, gt=0.0, validation_alias="TGIS_GATEWAY_CONNECT_TIMEOUT_S"
    )
    gateway_first_byte_timeout_s: float = Field(
        default=600.0, gt=0.0, validation_alias="TGIS_GATEWAY_FIRST_BYTE_TIMEOUT_S"
    )
    gateway_idle_timeout_s: float = Field(
        default=300.0, gt=0.0, validation_alias="TGIS_GATEWAY_IDLE_TIMEOUT_S"
    )
    gateway_default_max_new_tokens: int = Field(
        default=2048,
        ge=1,
        validation_alias="TGIS_GATEWAY_DEFAULT_MAX_NEW_TOKENS",
        description="cost of a request that names no max_new_tokens / max_tokens; set it to the "
        "backend's max_total_tokens, which is what the worker will count",
    )
    gateway_max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, validation_alias="TGIS_GATEWAY_MAX_BODY_BYTES"
    )
    gateway_max_answer_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        validation_alias="TGIS_GATEWAY_MAX_ANSWER_BYTES",
        description="largest whole (non-streamed) worker answer the gateway reads; a larger "
        "one is the worker's failure (502)",
    )

    @model_validator(mode="after")
    def _shared_token_is_anonymous(self) -> RouterSettings:
        if self.worker_token.get_secret_value() and not self.allow_anonymous_workers:
            raise ValueError(
                "TGIS_WORKER_TOKEN is a shared token, bound to no worker: set "
                "TGIS_ALLOW_ANONYMOUS_WORKERS=true to accept it (Vast's PyWorker needs it), or "
                "unset it and give each worker a join token (docs/router.md, Worker identity)"
            )
        return self

    @model_validator(mode="after")
    def _state_secret_with_redis(self) -> Self:
        if self.state_url is not None and len(self.state_secret.get_secret_value()) < 32:
            raise ValueError(
                "TGIS_STATE_URL needs TGIS_STATE_SECRET, 32 characters or more and the same on "
                "every router: it seals the signing keys and API keys kept in Redis "
                "(docs/scaleout.md)"
            )
        return self

    @model_validator(mode="after")
    def _metrics_port(self) -> Self:
        if self.metrics_host_port is not None and not 0 < self.metrics_host_port[1] <= 65535:
            raise ValueError("TGIS_METRICS_ADDRESS: the port must be 1 to 65535")
        return self

    @property
    def connection_limits(self) -> ConnectionLimits:
        """What one client's connections may take of this service (`httpedge.connections`)."""
        return ConnectionLimits.of(self)

    @property
    def scheme(self) -> str:
        """How clients reach the main port: https when a certificate is set."""
        return "https" if self.tls_cert is not None else "http"

    @property
    def metrics_host_port(self) -> tuple[str, int] | None:
        """`metrics_address` taken apart (an IPv6 host without its brackets), or None."""
        if self.metrics_address is None:
            return None
        host, _, port = self.metrics_address.rpartition(":")
        return host.strip("[]"), int(port)
