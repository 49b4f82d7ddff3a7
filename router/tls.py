"""The router's TLS: the server context for `--tls-cert`/`--tls-key`, and the certificate's
SHA-256 fingerprint, which workers may pin (`TGIS_ROUTER_FINGERPRINT`).

The fingerprint is the SHA-256 of the leaf certificate's DER bytes, in hex: what
`openssl x509 -noout -fingerprint -sha256 -in cert.pem` prints (colons and case aside) and
what `aiohttp.Fingerprint` compares.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from pathlib import Path

__all__ = ["certificate_fingerprint", "server_ssl_context"]

_FIRST_PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL
)


def server_ssl_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """A server context with `cert` (PEM, its chain after it) and `key`; None without both.
    Raises ValueError for one without the other, OSError (ssl.SSLError among them) when they
    cannot be read or do not match."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ValueError("TLS needs both a certificate and its key (--tls-cert, --tls-key)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def certificate_fingerprint(cert: Path) -> str:
    """The SHA-256 fingerprint of the first certificate in the PEM file `cert`, as lower-case
    hex with colons (`ab:cd:...`). Raises ValueError when the file holds no certificate."""
    found = _FIRST_PEM_CERTIFICATE.search(cert.read_text())
    if found is None:
        raise ValueError(f"{cert}: no PEM certificate in it")
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(found.group(0))).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
