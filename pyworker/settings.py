"""The PyWorker's settings: one typed object, built at start-up from flags and environment.

Vast.ai's variable names are kept where they exist (`WORKER_PORT`, `REPORT_ADDR`,
`CONTAINER_ID`, `PUBLIC_IPADDR`, `VAST_TCP_PORT_<port>`, `MODEL_LOG`), so Vast templates work
unchanged; our own start with `TGIS_`.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    clock_skew_s: float = Field(default=5.0, ge=0.0)
    replay_window: int = Field(default=4096, ge=1, le=1 << 20)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    report_interval_s: float = Field(default=5.0, gt=0.0)
    health_interval_s: float = Field(default=5.0, gt=0.0)
    connect_timeout_s: float = Field(default=10.0, gt=0.0)
    stream_idle_timeout_s: float = Field(default=300.0, gt=0.0)
    benchmark_tokens: int = Field(default=32, ge=1)

    @property
    def report_addresses(self) -> list[str]:
        return [addr.strip().rstrip("/") for addr in self.report_addr.split(",") if addr.strip()]

    @property
    def advertised_url(self) -> str:
        """The URL clients reach this worker at: the one its tickets must name."""
        return (self.public_url or f"http://127.0.0.1:{self.port}").rstrip("/")


def public_url_from_env(env: Mapping[str, str], port: int) -> str:
    """Vast's way to name a worker's public URL: `PUBLIC_IPADDR` and `VAST_TCP_PORT_<port>`."""
    address = env.get("PUBLIC_IPADDR", "").strip()
    public_port = env.get(f"VAST_TCP_PORT_{port}", "").strip()
    if not address or not public_port:
        return ""
    return f"http://{address}:{public_port}"
