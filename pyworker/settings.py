"""The PyWorker's settings: one typed object, built at start-up from flags and environment.

Vast.ai's variable names are kept where they exist (`WORKER_PORT`, `REPORT_ADDR`,
`CONTAINER_ID`, `PUBLIC_IPADDR`, `VAST_TCP_PORT_<port>`, `MODEL_LOG`, `UNSECURED`, `USE_SSL`), so
Vast templates work unchanged; our own start with `TGIS_`. Every field names its variable
(common.settings: only those names are read, exactly as spelled); docs/pyworker.md's table
lists them all, and a test compares the two.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator

from common.settings import ServiceSettings
from httpedge.connections import ConnectionLimits, limit_field
from pyworker.tickets.verifier import TicketScheme

__all__ = ["WorkerSettings"]


class WorkerSettings(ServiceSettings):
    port: int = Field(default=3000, ge=1, le=65535, validation_alias="WORKER_PORT")
    host: str = Field(default="0.0.0.0", validation_alias="TGIS_WORKER_HOST")
    backend_url: str = Field(default="http://127.0.0.1:5001", validation_alias="TGIS_BACKEND_URL")
    report_addr: str = Field(
        default="http://127.0.0.1:8080",
        validation_alias="REPORT_ADDR",
        description="router URL(s) to report to and fetch keys from; comma-separated",
    )
    worker_id: str = Field(default="", validation_alias="CONTAINER_ID")
    public_url: str = Field(default="", validation_alias="TGIS_PUBLIC_URL")
    public_ipaddr: str = Field(
        default="",
        validation_alias="PUBLIC_IPADDR",
        description="Vast's public address of this machine",
    )
    vast_tcp_ports: dict[str, str] = Field(
        default_factory=dict,
        validation_alias="VAST_TCP_PORT_<WORKER_PORT>",
        description="Vast's public port for each of this machine's ports: {port: public port}",
    )
    endpoint: str = Field(default="default", validation_alias="TGIS_ENDPOINT")
    worker_token: SecretStr | None = Field(default=None, validation_alias="TGIS_WORKER_TOKEN")
    join_token: SecretStr | None = Field(
        default=None,
        validation_alias="TGIS_JOIN_TOKEN",
        description="one-time token to register with the router; its answer is this worker's "
        "own credential, kept in memory for every later report; one for every router, or one "
        "per REPORT_ADDR router, comma-separated in its order",
    )
    router_ca_file: str | None = Field(
        default=None,
        validation_alias="TGIS_ROUTER_CA",
        description="CA certificate(s), PEM, that the router's HTTPS certificate must chain to",
    )
    router_fingerprint: str | None = Field(
        default=None,
        pattern=r"^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$",
        validation_alias="TGIS_ROUTER_FINGERPRINT",
        description="SHA-256 of the router's certificate (hex, colons optional): pinned",
    )
    ticket_scheme: TicketScheme = Field(
        default=TicketScheme.ED25519,
        validation_alias="TGIS_TICKET_SCHEME",
        description="ed25519 (native), vast (RSA over cost/endpoint/reqnum/url) or vast-url",
    )
    unsecured: bool = Field(
        default=False,
        validation_alias="UNSECURED",
        description="accept requests without checking tickets (testing only; loudly reported)",
    )
    clock_skew_s: float = Field(default=5.0, ge=0.0, validation_alias="TGIS_CLOCK_SKEW_S")
    replay_window: int = Field(
        default=4096, ge=1, le=1 << 20, validation_alias="TGIS_REPLAY_WINDOW"
    )
    key_refresh_interval_s: float = Field(
        default=5.0,
        ge=0.0,
        validation_alias="TGIS_KEY_REFRESH_INTERVAL_S",
        description="the fewest seconds between two fetches of the router's keys",
    )
    key_poll_interval_s: float = Field(
        default=60.0,
        gt=0.0,
        le=60.0,
        validation_alias="TGIS_KEY_POLL_INTERVAL_S",
        description="keys are fetched again at least this often (60 s at most): a revoked key "
        "is dropped",
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, validation_alias="TGIS_WORKER_MAX_BODY_BYTES"
    )
    header_timeout_s: float = limit_field("TGIS_WORKER_", "header_timeout_s")
    body_timeout_s: float = limit_field("TGIS_WORKER_", "body_timeout_s")
    send_timeout_s: float = limit_field("TGIS_WORKER_", "send_timeout_s")
    keepalive_timeout_s: float = limit_field("TGIS_WORKER_", "keepalive_timeout_s")
    max_connections: int = limit_field("TGIS_WORKER_", "max_connections")
    max_header_bytes: int = limit_field("TGIS_WORKER_", "max_header_bytes")
    max_queue_time_s: float = Field(default=30.0, gt=0.0, validation_alias="TGIS_MAX_QUEUE_TIME")
    max_concurrency: int = Field(
        default=0,
        ge=0,
        validation_alias="TGIS_MAX_CONCURRENCY",
        description="requests relayed at once; 0: the backend's max_concurrent_requests",
    )
    report_interval_s: float = Field(default=5.0, gt=0.0, validation_alias="TGIS_REPORT_INTERVAL_S")
    health_interval_s: float = Field(default=5.0, gt=0.0, validation_alias="TGIS_HEALTH_INTERVAL_S")
    connect_timeout_s: float = Field(
        default=10.0, gt=0.0, validation_alias="TGIS_CONNECT_TIMEOUT_S"
    )
    first_byte_timeout_s: float = Field(
        default=600.0, gt=0.0, validation_alias="TGIS_FIRST_BYTE_TIMEOUT_S"
    )
    stream_idle_timeout_s: float = Field(
        default=300.0, gt=0.0, validation_alias="TGIS_STREAM_IDLE_TIMEOUT_S"
    )
    benchmark_tokens: int = Field(default=8, ge=1, validation_alias="TGIS_BENCHMARK_TOKENS")
    benchmark_concurrency: int = Field(
        default=8, ge=1, validation_alias="TGIS_BENCHMARK_CONCURRENCY"
    )
    benchmark_repeats: int = Field(
        default=3,
        ge=1,
        validation_alias="TGIS_BENCHMARK_REPEATS",
        description="rounds the start-up benchmark times after its warm-up; it takes the median",
    )
    benchmark_budget_s: float = Field(
        default=2.0,
        gt=0.0,
        validation_alias="TGIS_BENCHMARK_BUDGET_S",
        description="no start-up benchmark round starts once the timed ones took this long",
    )
    benchmark_cache: str = Field(
        default="",
        validation_alias="TGIS_BENCHMARK_CACHE",
        description="JSON file of start-up figures: a start that finds its own serves at once",
    )
    omp_num_threads: str = Field(
        default="",
        validation_alias="OMP_NUM_THREADS",
        description="the backend's torch threads, when set here: part of the cached figure's key",
    )
    cuda_visible_devices: str = Field(
        default="",
        validation_alias="CUDA_VISIBLE_DEVICES",
        description="the backend's GPUs, when set here: part of the cached figure's key",
    )
    model_log: str = Field(
        default="",
        validation_alias="MODEL_LOG",
        description="the backend's log (TGI --json-output) to learn loaded/failed from",
    )
    drain_grace_s: float = Field(default=30.0, ge=0.0, validation_alias="TGIS_DRAIN_GRACE")
    use_ssl: bool = Field(default=False, validation_alias="USE_SSL")
    ssl_cert: str = Field(default="/etc/instance.crt", validation_alias="TGIS_SSL_CERT")
    ssl_key: str = Field(default="/etc/instance.key", validation_alias="TGIS_SSL_KEY")

    @model_validator(mode="after")
    def _one_way_to_trust_the_router(self) -> Self:
        if self.router_ca_file and self.router_fingerprint:
            raise ValueError("set TGIS_ROUTER_CA or TGIS_ROUTER_FINGERPRINT, not both")
        return self

    @model_validator(mode="after")
    def _a_join_token_for_all_routers_or_each(self) -> Self:
        tokens, routers = len(self.join_tokens), len(self.report_addresses)
        if tokens > 1 and tokens != routers:
            raise ValueError(
                f"TGIS_JOIN_TOKEN holds {tokens} tokens for {routers} REPORT_ADDR routers: give "
                "one token for every router, or one per router in REPORT_ADDR's order"
            )
        return self

    @property
    def join_tokens(self) -> list[str]:
        """The join tokens: none, one for every router, or one per router."""
        secret = self.join_token.get_secret_value() if self.join_token else ""
        return [token.strip() for token in secret.split(",") if token.strip()]

    @property
    def connection_limits(self) -> ConnectionLimits:
        """What one client's connections may take of this service (`httpedge.connections`)."""
        return ConnectionLimits.of(self)

    @property
    def report_addresses(self) -> list[str]:
        return [addr.strip().rstrip("/") for addr in self.report_addr.split(",") if addr.strip()]

    @property
    def advertised_url(self) -> str:
        """The URL clients reach this worker at, the one its tickets must name: `public_url`,
        else Vast's `PUBLIC_IPADDR` and `VAST_TCP_PORT_<port>`, else this machine's loopback."""
        scheme = "https" if self.use_ssl else "http"
        address = self.public_ipaddr.strip()
        public_port = self.vast_tcp_ports.get(str(self.port), "").strip()
        if self.public_url:
            url = self.public_url
        elif address and public_port:
            url = f"{scheme}://{address}:{public_port}"
        else:
            url = f"{scheme}://127.0.0.1:{self.port}"
        return url.rstrip("/")
