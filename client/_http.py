"""The one place the SDK talks HTTP: POST a JSON body, get a 200 body or stream, or a typed error.

aiohttp's exceptions are translated here, at the boundary, into `client.errors`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Literal

import aiohttp

from client.errors import ConnectionFailed, RequestTimeout, TGISError, error_from_response

__all__ = ["post_json", "post_streaming"]

Peer = Literal["router", "worker"]


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: Mapping[str, Any],
    *,
    peer: Peer,
    headers: Mapping[str, str] | None = None,
    timeouts: aiohttp.ClientTimeout,
) -> bytes:
    """POST `body` as JSON and return the body of a 200 answer; raise the typed error otherwise."""
    async with post_streaming(
        session, url, body, peer=peer, headers=headers, timeouts=timeouts
    ) as response:
        return await response.read()


@asynccontextmanager
async def post_streaming(
    session: aiohttp.ClientSession,
    url: str,
    body: Mapping[str, Any],
    *,
    peer: Peer,
    headers: Mapping[str, str] | None = None,
    timeouts: aiohttp.ClientTimeout,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """POST `body` as JSON and yield a 200 response whose body is still unread. Errors raised while
    the caller reads it come back through here, so they are translated too."""
    with _translate_errors(peer, url):
        async with session.post(url, json=body, headers=headers, timeout=timeouts) as response:
            if response.status != 200:
                raise error_from_response(
                    response.status,
                    await response.read(),
                    origin=peer,
                    retry_after=response.headers.get("Retry-After"),
                )
            yield response


@contextmanager
def _translate_errors(peer: Peer, url: str) -> Iterator[None]:
    """Turn aiohttp and timeout exceptions raised inside into ConnectionFailed or RequestTimeout."""
    try:
        yield
    except TGISError:
        raise
    except TimeoutError:
        raise RequestTimeout(f"no complete answer from {url} in time", origin=peer) from None
    except aiohttp.ClientPayloadError:
        raise ConnectionFailed(f"the answer from {url} broke off", origin=peer) from None
    except aiohttp.ClientError as exc:
        reason = str(exc) or type(exc).__name__
        raise ConnectionFailed(f"could not talk to {url}: {reason}", origin=peer) from None
