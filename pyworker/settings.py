"""The PyWorker's settings: one typed object, built at start-up from flags and environment.

Vast.ai's variable names are kept where they exist (`WORKER_PORT`, `REPORT_ADDR`,
`CONTAINER_ID`, `PUBLIC_IPADDR`, `VAST_TCP_PORT_<port>`, `MODEL_LOG`), so Vast templates work
unchanged; our own start with `TGIS_`.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from pyworker.tickets import TicketScheme

__all__ = ["WorkerSettings", "public_url_from_env"]


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    port: int = Field(default=3000, ge=1, le=65535, validation_alias=_env("port", "WORKER_PORT"))
    host: str = Field(default="0.0.0.0", validation_alias=_env("host", "TGIS_WORKER_HOST"))
    backend_url: str = Field(
        default="http://127.0.0.1:5001", validation_alias=_env("backend_url", "TGIS_BACKEND_URL")
    )
    report_addr: str = Field(
        default="http://127.0.0.1:8080",
        validation_alias=_env("report_addr", "REPORT_ADDR"),
        description="router URL(s) to report to and fetch keys from; comma-separated",
    )
    worker_id: str = Field(default="", validation_alias=_env("worker_id", "CONTAINER_ID"))
    public_url: str = Field(default="", validation_alias=_env("public_url", "TGIS_PUBLIC_URL"))
    endpoint: str = Field(default="default", validation_alias=_env("endpoint", "TGIS_ENDPOINT"))
    worker_token: SecretStr | None = Field(
        default=None, validation_alias=_env("worker_token", "TGIS_WORKER_TOKEN")
    )
    ticket_scheme: TicketScheme = Field(
        default=TicketScheme.ED25519,
        validation_alias=_env("ticket_scheme", "TGIS_TICKET_SCHEME"),
        description="ed25519 (native), vast (RSA over cost/endpoint/reqnum/url) or vast-url",
    )
    unsecured: bool = Field(
        default=False,
        validation_alias=_env("unsecured", "UNSECURED"),
        description="accept requests without checking tickets (testing only; loudly reported)",
    )
    clock_skew_s: float = Field(default=5.0, ge=0.0)
    replay_window: int = Field(default=4096, ge=1, le=1 << 20)
    key_refresh_interval_s: float = Field(default=5.0, ge=0.0)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_queue_time_s: float = Field(
        default=30.0, gt=0.0, validation_alias=_env("max_queue_time_s", "TGIS_MAX_QUEUE_TIME")
    )
    max_concurrency: int = Field(
        default=0,
        ge=0,
        validation_alias=_env("max_concurrency", "TGIS_MAX_CONCURRENCY"),
        description="requests relayed at once; 0: the backend's max_concurrent_requests",
    )
    report_interval_s: float = Field(default=5.0, gt=0.0)
    health_interval_s: float = Field(default=5.0, gt=0.0)
    connect_timeout_s: float = Field(default=10.0, gt=0.0)
    first_byte_timeout_s: float = Field(default=600.0, gt=0.0)
    stream_idle_timeout_s: float = Field(default=300.0, gt=0.0)
    benchmark_tokens: int = Field(default=32, ge=1)
    benchmark_concurrency: int = Field(default=8, ge=1)
    model_log: str = Field(
        default="",
        validation_alias=_env("model_log", "MODEL_LOG"),
        description="the backend's log (TGI --json-output) to learn loaded/failed from",
    )
    drain_grace_s: float = Field(
        default=30.0, ge=0.0, validation_alias=_env("drain_grace_s", "TGIS_DRAIN_GRACE")
    )
    use_ssl: bool = Field(default=False, validation_alias=_env("use_ssl", "USE_SSL"))
    ssl_cert: str = Field(
        default="/etc/instance.crt", validation_alias=_env("ssl_cert", "TGIS_SSL_CERT")
    )
    ssl_key: str = Field(
        default="/etc/instance.key", validation_alias=_env("ssl_key", "TGIS_SSL_KEY")
    )

    @property
    def report_addresses(self) -> list[str]:
        return [addr.strip().rstrip("/") for addr in self.report_addr.split(",") if addr.strip()]

    @property
    def advertised_url(self) -> str:
        """The URL clients reach this worker at: the one its tickets must name."""
        scheme = "https" if self.use_ssl else "http"
        return (self.public_url or f"{scheme}://127.0.0.1:{self.port}").rstrip("/")


def public_url_from_env(env: Mapping[str, str], port: int, *, use_ssl: bool = False) -> str:
    """Vast's way to name a worker's public URL: `PUBLIC_IPADDR` and `VAST_TCP_PORT_<port>`."""
    address = env.get("PUBLIC_IPADDR", "").strip()
    public_port = env.get(f"VAST_TCP_PORT_{port}", "").strip()
    if not address or not public_port:
        return ""
    scheme = "https" if use_ssl else "http"
    return f"{scheme}://{address}:{public_port}"
