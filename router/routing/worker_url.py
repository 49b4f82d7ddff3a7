"""The check of the URL a worker registers with: the address the router (gateway mode) and every
client will send that worker's traffic to, so it may name a place and nothing else.

A worker URL is `http://host:port` or `https://host:port` (the port may be left out, and one
`/` may end it): no path, query, fragment or user info, nothing the gateway's own path could be
swallowed by. Unless the endpoint allows private workers, the host may not be a loopback,
private, link-local or otherwise non-global address written as a literal (the rule of
`router.addresses`, which the gateway applies to every connection too) (also in the legacy
forms `127.1` or `0x7f000001` that resolvers accept), nor a name that means this machine
(`localhost`, `*.localhost`). A public name that resolves to a private address is not caught
here (that needs DNS, which a pure check does not do).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import SplitResult, urlsplit

from router.addresses import is_public_address

__all__ = ["WorkerUrlError", "check_worker_url"]

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$")
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class WorkerUrlError(ValueError):
    """The URL cannot be a worker's; the message says what to change."""


def check_worker_url(url: str, *, allow_private: bool) -> None:
    """Raise WorkerUrlError unless `url` is a worker URL (see the module's docstring);
    `allow_private`: the endpoint accepts workers on loopback, private and link-local hosts."""
    parts = _split(url)
    host = parts.hostname or ""
    address = _literal_address(host)
    if address is None and not _HOST_NAME.match(host):
        raise WorkerUrlError(f"worker url {url!r}: {host!r} is not a host name or IP address")
    if allow_private:
        return
    if address is not None and not is_public_address(str(address)):
        raise WorkerUrlError(
            f"worker url {url!r}: {address} is not a public address (loopback, private, "
            "link-local, reserved, ...); report a public address, or set allow_private_workers "
            "on the endpoint"
        )
    if host.rstrip(".") in _LOCAL_NAMES or host.rstrip(".").endswith(".localhost"):
        raise WorkerUrlError(
            f"worker url {url!r}: {host!r} names this machine; report a public address, "
            "or set allow_private_workers on the endpoint"
        )


def _split(url: str) -> SplitResult:
    """The URL's parts, once it is known to be scheme, host and port only."""
    if not url.isascii() or not url.isprintable() or " " in url or "\\" in url:
        raise WorkerUrlError(f"worker url {url!r}: only printable ASCII, no spaces or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WorkerUrlError(f"worker url {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise WorkerUrlError(f"worker url {url!r}: the scheme must be http or https")
    if "@" in parts.netloc:
        raise WorkerUrlError(f"worker url {url!r}: no user info (`user@`) in a worker url")
    if url.partition("://")[2] not in (parts.netloc, parts.netloc + "/"):
        raise WorkerUrlError(
            f"worker url {url!r}: only scheme, host and port (no path, query or fragment): "
            f"report {parts.scheme}://{parts.netloc}"
        )
    if not parts.hostname or port == 0 or parts.netloc.endswith(":"):
        raise WorkerUrlError(f"worker url {url!r}: name a host, and a port from 1 to 65535")
    return parts


def _literal_address(host: str) -> Address | None:
    """The address `host` is written as, if it is one (IPv6, dotted IPv4 or a legacy form)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise WorkerUrlError(f"worker url host {host!r} is not an IPv4 address") from None
    return None
