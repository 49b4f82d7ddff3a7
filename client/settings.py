"""What the client's commands (`generate`, `bench`) read from the environment: the API key.

The SDK itself reads nothing; its caller passes everything. Only the names declared here are
read, exactly as spelled (common.settings); docs/bench.md's table lists them.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field, SecretStr

from common.settings import ServiceSettings

__all__ = ["API_KEY_VARIABLE", "ClientSettings", "command_api_key"]

API_KEY_VARIABLE = "TGIS_API_KEY"


class ClientSettings(ServiceSettings):
    api_key: SecretStr | None = Field(default=None, validation_alias=API_KEY_VARIABLE)
    """The endpoint's API key, when --api-key does not give one."""


def command_api_key(flag: str | None, environ: Mapping[str, str]) -> str | None:
    """The API key a command uses: its --api-key, else `TGIS_API_KEY`; None when neither (or
    only an empty one) is given."""
    settings = ClientSettings.from_environment(environ, api_key=flag or None)
    return settings.api_key.get_secret_value() or None if settings.api_key else None
