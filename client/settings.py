"""What the client's commands (`generate`, `bench`) read from the environment: the router
URL(s), the API key, the CA file that `generate` trusts, and the admin key `bench` reads the
router's status with.

The SDK itself reads nothing; its caller passes everything. Only the names declared here are
read, exactly as spelled (common.settings); docs/bench.md's table lists them.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence

from pydantic import Field, SecretStr

from client.routers import parse_router_urls
from common.settings import ServiceSettings

__all__ = [
    "API_KEY_VARIABLE",
    "ClientSettings",
    "command_admin_key",
    "command_api_key",
    "command_router_urls",
    "command_ssl_context",
]

API_KEY_VARIABLE = "TGIS_API_KEY"


class ClientSettings(ServiceSettings):
    router_url: str | None = Field(default=None, validation_alias="TGIS_ROUTER_URL")
    """The router URL(s), comma-separated, when no --router (--url for `bench`) gives one."""
    api_key: SecretStr | None = Field(default=None, validation_alias=API_KEY_VARIABLE)
    """The endpoint's API key, when --api-key does not give one."""
    ca_file: str | None = Field(default=None, validation_alias="TGIS_CA_FILE")
    """A PEM CA file that HTTPS routers and workers must chain to, when --ca-file gives none."""
    admin_key: SecretStr | None = Field(default=None, validation_alias="TGIS_ADMIN_KEY")
    """The router's admin key: `bench` samples its `/status` with it."""


def command_api_key(flag: str | None, environ: Mapping[str, str]) -> str | None:
    """The API key a command uses: its --api-key, else `TGIS_API_KEY`; None when neither (or
    only an empty one) is given."""
    settings = ClientSettings.from_environment(environ, api_key=flag or None)
    return settings.api_key.get_secret_value() or None if settings.api_key else None


def command_router_urls(
    flags: Sequence[str] | None, environ: Mapping[str, str], default: str
) -> tuple[str, ...]:
    """The routers a command asks, in order: its --router flags (each one URL or a comma list),
    else `TGIS_ROUTER_URL`, else `default`. ValueError for a URL that is not http(s)."""
    if flags:
        return parse_router_urls(flags)
    configured = ClientSettings.from_environment(environ).router_url
    return parse_router_urls(configured or default)


def command_ssl_context(flag: str | None, environ: Mapping[str, str]) -> ssl.SSLContext | None:
    """What a command's HTTPS connections trust: its --ca-file, else `TGIS_CA_FILE`; None (the
    system's CAs) when neither. Raises OSError when the file cannot be read."""
    ca_file = ClientSettings.from_environment(environ, ca_file=flag or None).ca_file
    return ssl.create_default_context(cafile=ca_file) if ca_file else None


def command_admin_key(environ: Mapping[str, str]) -> str | None:
    """`TGIS_ADMIN_KEY`, or None when it is unset or empty."""
    admin_key = ClientSettings.from_environment(environ).admin_key
    return admin_key.get_secret_value() or None if admin_key else None
