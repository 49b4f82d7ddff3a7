"""`up`'s local workers check tickets by the scheme its router signs them with."""

from __future__ import annotations

import pytest

from router.cli.up import worker_env
from router.settings import RouterSettings


@pytest.mark.parametrize("scheme", ["ed25519", "vast", "vast-url"])
def test_the_workers_get_the_routers_ticket_scheme(scheme: str) -> None:
    settings = RouterSettings(ticket_scheme=scheme)
    env = worker_env(settings, {"PATH": "/bin", "TGIS_TICKET_SCHEME": "stale"})
    assert env == {"PATH": "/bin", "TGIS_TICKET_SCHEME": scheme}
