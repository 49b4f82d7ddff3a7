"""Several routers for one endpoint, as pure logic: which URLs, in what order to ask them, and
which failures send a route request on to the next one. The I/O lives in `client._async` and
`client.bench.targets`; nothing here touches the network.

A route request fails over to the next router only when the router it asked gave no answer
(connection refused or broken, no answer in time) or answered 5xx: nothing was routed, so asking
another router is safe. A 4xx (a wrong key, an unknown endpoint, a rate limit) is the router's
verdict on the request and is raised as it is; so is anything after a worker's first byte, which
no router sees. The router that answered last is asked first next time, so a router that is down
costs one failed attempt, not one per request.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["RouterRing", "parse_router_urls", "router_failed"]


def parse_router_urls(value: str | Sequence[str]) -> tuple[str, ...]:
    """The router URLs `value` names: one URL, a comma-separated list, or a sequence of either;
    trailing slashes dropped, duplicates dropped (first kept). ValueError when none is given or
    one is not an http(s) URL."""
    items = [value] if isinstance(value, str) else list(value)
    urls: list[str] = []
    for item in items:
        for part in item.split(","):
            url = part.strip().rstrip("/")
            if not url:
                continue
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"every URL must be an http(s) URL, got {url!r}")
            if url not in urls:
                urls.append(url)
    if not urls:
        raise ValueError("no router URL given")
    return tuple(urls)


def router_failed(status: int | None) -> bool:
    """Whether a route request that ended with HTTP `status` (None: no answer at all) may go on
    to the next router: no answer, or a 5xx."""
    return status is None or status >= 500


class RouterRing:
    """The routers of one client, and which to ask first: the one that answered last."""

    def __init__(self, urls: str | Sequence[str]) -> None:
        self._urls = parse_router_urls(urls)
        self._first = 0

    @property
    def urls(self) -> tuple[str, ...]:
        return self._urls

    @property
    def preferred(self) -> str:
        """The router asked first."""
        return self._urls[self._first]

    def order(self) -> list[str]:
        """Every router once, the preferred one first, then the others in their given order
        (wrapping around)."""
        return [*self._urls[self._first :], *self._urls[: self._first]]

    def answered(self, url: str) -> None:
        """`url` answered a route request: ask it first from now on."""
        self._first = self._urls.index(url)
