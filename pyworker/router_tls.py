"""How the PyWorker trusts the router over HTTPS: its session's `ssl` for status reports and
key fetches (`pyworker.lifetime.client_session`).

A pinned fingerprint (`TGIS_ROUTER_FINGERPRINT`) accepts exactly the router's certificate,
whatever signed it and whatever name it bears: the SHA-256 of its DER bytes, which
`tgi-serverless up` and `openssl x509 -fingerprint -sha256` print. A CA file (`TGIS_ROUTER_CA`)
accepts certificates that chain to it and name the router's host. Neither: the system's trust
store, as any HTTPS client. Plain-HTTP router URLs are unaffected (and unprotected).
"""

from __future__ import annotations

import ssl

import aiohttp

__all__ = ["router_ssl"]


def router_ssl(
    ca_file: str | None, fingerprint: str | None
) -> ssl.SSLContext | aiohttp.Fingerprint | bool:
    """The `ssl` argument of the connector to the router, from at most one of the two
    (`WorkerSettings` refuses both). Raises OSError when the CA file cannot be read."""
    if fingerprint:
        return aiohttp.Fingerprint(bytes.fromhex(fingerprint.replace(":", "")))
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return True
