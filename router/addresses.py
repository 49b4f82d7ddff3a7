"""Which IP addresses are on the internet: the one rule that worker registration
(`router.routing.worker_url`, on an address written in the URL) and the gateway
(`router.gateway.sessions`, on the address each connection is made to) both apply when an
endpoint does not allow private workers. Pure."""

from __future__ import annotations

import ipaddress

__all__ = ["is_public_address"]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_public_address(host: str) -> bool:
    """Whether the IP address `host` (as a socket address gives it) is one on the internet: not
    loopback, private, link-local, shared (CGNAT), reserved, unspecified or multicast, also when
    it comes wrapped in IPv6 (IPv4-mapped, 6to4, NAT64). False for what is not an address."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # an IPv4 address, as an IPv6 socket reaches it
            return is_public_address(str(address.ipv4_mapped))
        embedded = address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    return address.is_global and not address.is_multicast
