"""How the PyWorker trusts an HTTPS router: a pinned fingerprint, a CA file, or the system's CAs;
never two ways at once."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest
from pydantic import ValidationError

from pyworker.router_tls import router_ssl
from pyworker.settings import WorkerSettings
from tests.tls_certs import make_server_certificate

PIN = "0123456789abcdef" * 4


def test_a_fingerprint_is_pinned_with_or_without_colons() -> None:
    plain = router_ssl(None, PIN)
    spaced = router_ssl(None, ":".join(PIN[i : i + 2] for i in range(0, 64, 2)).upper())
    assert isinstance(plain, aiohttp.Fingerprint)
    assert isinstance(spaced, aiohttp.Fingerprint)
    assert plain.fingerprint == spaced.fingerprint == bytes.fromhex(PIN)


def test_a_ca_file_is_trusted_and_nothing_means_the_system_store(tmp_path: Path) -> None:
    made = make_server_certificate(tmp_path)
    context = router_ssl(str(made.ca_file), None)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert router_ssl(None, None) is True


@pytest.mark.parametrize(
    "fields",
    [
        {"router_fingerprint": "abcd"},  # too short
        {"router_fingerprint": "zz" * 32},  # not hex
        {"router_fingerprint": PIN, "router_ca_file": "/etc/ca.pem"},  # two ways at once
    ],
)
def test_a_bad_or_double_trust_setting_is_refused(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        WorkerSettings(**fields)
