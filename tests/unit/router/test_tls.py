"""The router's TLS pieces: its certificate's fingerprint, as workers pin it and openssl prints
it, and the server context, which wants a certificate and its key together."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from router.tls import certificate_fingerprint, server_ssl_context
from tests.tls_certs import make_server_certificate


def test_the_fingerprint_is_the_sha256_of_the_first_certificate(tmp_path: Path) -> None:
    made = make_server_certificate(tmp_path)
    chain = tmp_path / "chain.pem"
    chain.write_text(made.cert_file.read_text() + made.ca_file.read_text())
    fingerprint = certificate_fingerprint(chain)
    assert fingerprint.replace(":", "") == made.fingerprint
    assert len(fingerprint.split(":")) == 32


def test_a_file_without_a_certificate_has_no_fingerprint(tmp_path: Path) -> None:
    made = make_server_certificate(tmp_path)
    with pytest.raises(ValueError, match="no PEM certificate"):
        certificate_fingerprint(made.key_file)


def test_the_server_context_wants_both_halves(tmp_path: Path) -> None:
    made = make_server_certificate(tmp_path)
    assert server_ssl_context(None, None) is None
    assert isinstance(server_ssl_context(made.cert_file, made.key_file), ssl.SSLContext)
    for cert, key in ((made.cert_file, None), (None, made.key_file)):
        with pytest.raises(ValueError, match="both a certificate and its key"):
            server_ssl_context(cert, key)
    with pytest.raises(ssl.SSLError):
        server_ssl_context(made.cert_file, made.cert_file)  # not its key
