"""The gateway's HTTP clients to workers: what they will connect to, and what they keep.

A worker reports its own URL, and any worker host may be hostile, so the gateway must not be a
way into the router's own network. It keeps two sessions:

- `public_session`: connects only to public addresses. The check runs on the address each
  socket is about to connect to, after DNS, so a name that resolves (or re-resolves, DNS
  rebinding) to 127.0.0.1, 10/8, 169.254/16, ::1, fc00::/7, ... is refused like the address
  itself (`router.addresses.is_public_address`, the rule registration applies too).
- `private_session`: connects anywhere, for the endpoints that allow private workers
  (`Endpoint.allow_private_workers`, the local provider's loopback workers). Its connections
  are its own: a connection it opened is never reused for another endpoint's request.

Neither keeps cookies (a worker's cookie is no business of the next worker), and neither
decodes bodies; the proxy never follows a redirect (`allow_redirects=False` on each request).
"""

from __future__ import annotations

import errno
import socket

import aiohttp
from aiohappyeyeballs import AddrInfoType

from router.addresses import is_public_address

__all__ = ["PrivateAddressRefused", "client_session", "public_only_socket"]


class PrivateAddressRefused(OSError):
    """The gateway would connect to a loopback, private or link-local address for an endpoint
    that does not allow private workers."""

    def __init__(self, address: str) -> None:
        super().__init__(
            errno.EACCES,
            f"{address} is not a public address, and the endpoint does not allow private workers",
        )


def public_only_socket(addr_info: AddrInfoType) -> socket.socket:
    """A socket for `addr_info` (aiohttp's `socket_factory`), if its address is public;
    PrivateAddressRefused if not, which aiohttp reports as a connection error."""
    family, type_, proto, _, sockaddr = addr_info
    if not is_public_address(str(sockaddr[0])):
        raise PrivateAddressRefused(str(sockaddr[0]))
    return socket.socket(family=family, type=type_, proto=proto)


def client_session(*, connect_timeout_s: float, public_only: bool) -> aiohttp.ClientSession:
    """A session to workers: no total timeout (the proxy times each answer), no cookies, bodies
    as they come; with `public_only`, connections to public addresses alone."""
    connector = aiohttp.TCPConnector(
        limit=0,
        limit_per_host=0,
        keepalive_timeout=60,
        socket_factory=public_only_socket if public_only else None,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, connect=connect_timeout_s),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
    )
