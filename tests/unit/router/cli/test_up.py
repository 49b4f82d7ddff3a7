"""`up`'s local workers check tickets by the scheme its router signs them with, pin its
certificate and share the machine's cores; its banner shows only the keys it generated."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from router.cli.up import _banner, worker_env
from router.settings import RouterSettings
from tests.tls_certs import make_server_certificate


@pytest.mark.parametrize("scheme", ["ed25519", "vast", "vast-url"])
def test_the_workers_get_the_routers_ticket_scheme(scheme: str) -> None:
    settings = RouterSettings(ticket_scheme=scheme)
    base = {
        "PATH": "/bin",
        "TGIS_TICKET_SCHEME": "stale",
        "OMP_NUM_THREADS": "3",
        "TGIS_BENCHMARK_CACHE": "/mine.json",
    }
    env = worker_env(settings, base, cpus=2, max_workers=2)
    assert env == {**base, "TGIS_TICKET_SCHEME": scheme}


def test_the_workers_keep_their_start_up_figures_in_the_state_folder(tmp_path: Path) -> None:
    """A worker started again finds its figure there and skips the benchmark."""
    env = worker_env(RouterSettings(state_dir=tmp_path), {}, cpus=2, max_workers=2)
    assert env["TGIS_BENCHMARK_CACHE"] == str(tmp_path / "benchmarks.json")


@pytest.mark.parametrize(
    ("cpus", "max_workers", "threads"), [(2, 2, "1"), (16, 4, "4"), (16, 3, "5"), (2, 8, "1")]
)
def test_each_worker_gets_its_share_of_the_cores_for_torch(
    cpus: int, max_workers: int, threads: str
) -> None:
    """torch's default (a thread per core in every backend) oversubscribes a machine the
    workers share; a user's own OMP_NUM_THREADS (above) wins."""
    env = worker_env(RouterSettings(), {}, cpus=cpus, max_workers=max_workers)
    assert env["OMP_NUM_THREADS"] == threads


def test_the_banner_shows_the_keys_this_start_generated() -> None:
    settings = RouterSettings(api_key=SecretStr("made-api-key"), admin_key=SecretStr("made-admin"))
    banner = _banner(settings, frozenset({"api_key", "admin_key"}), "http://127.0.0.1:8080", 1)
    assert "API key     made-api-key" in banner
    assert "admin key   made-admin" in banner
    assert "TGIS_API_KEY=made-api-key " in banner
    assert "http://127.0.0.1:8080/ui   (password: admin key)" in banner


def test_the_banner_never_shows_a_key_it_was_given() -> None:
    settings = RouterSettings(
        api_key=SecretStr("given-api-key"), admin_key=SecretStr("given-admin"), public_status=True
    )
    banner = _banner(settings, frozenset(), "http://127.0.0.1:8080", 1)
    assert "given-api-key" not in banner
    assert "given-admin" not in banner
    assert "TGIS_API_KEY=<your API key> " in banner
    assert "(open to all (--public-status))" in banner


def test_workers_pin_the_certificate_of_a_tls_router(tmp_path: Path) -> None:
    made = make_server_certificate(tmp_path)
    settings = RouterSettings(tls_cert=made.cert_file, tls_key=made.key_file)
    pin = worker_env(settings, {}, cpus=2, max_workers=1)["TGIS_ROUTER_FINGERPRINT"]
    assert pin.replace(":", "") == made.fingerprint
