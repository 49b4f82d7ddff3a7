"""`up`'s local workers check tickets by the scheme its router signs them with."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from router.cli.up import worker_env
from router.settings import RouterSettings


@pytest.mark.parametrize("scheme", ["ed25519", "vast", "vast-url"])
def test_the_workers_get_the_routers_token_and_ticket_scheme(scheme: str) -> None:
    settings = RouterSettings(worker_token=SecretStr("w-token"), ticket_scheme=scheme)
    env = worker_env(settings, {"PATH": "/bin", "TGIS_TICKET_SCHEME": "stale"})
    assert env == {"PATH": "/bin", "TGIS_WORKER_TOKEN": "w-token", "TGIS_TICKET_SCHEME": scheme}
