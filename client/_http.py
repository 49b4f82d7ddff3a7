"""The one place the SDK talks HTTP: POST a JSON body, get a 200 body or stream, or a typed error.

aiohttp's exceptions are translated here, at the boundary, into `client.errors`. The first-byte
limit covers sending the request and waiting for the answer's headers; the idle limit covers
every read of the body after that.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from client.errors import ConnectionFailed, RequestTimeout, TGISError, error_from_response

__all__ = ["Exchange", "Peer", "iter_chunks", "post_json", "post_streaming"]

Peer = Literal["router", "worker"]


@dataclass(frozen=True, slots=True)
class Exchange:
    """How the SDK talks to one kind of peer: who it is (errors name it), the headers sent,
    aiohttp's limits (connect, total) and ours (first byte, each read of the body)."""

    peer: Peer
    timeout: aiohttp.ClientTimeout
    headers: Mapping[str, str] | None = None
    first_byte: float | None = None
    idle: float | None = None


async def post_json(
    session: aiohttp.ClientSession, url: str, body: Mapping[str, Any], exchange: Exchange
) -> bytes:
    """POST `body` as JSON and return the body of a 200 answer; raise the typed error otherwise."""
    async with post_streaming(session, url, body, exchange) as response:
        async with asyncio.timeout(exchange.idle):
            return await response.read()


@asynccontextmanager
async def post_streaming(
    session: aiohttp.ClientSession, url: str, body: Mapping[str, Any], exchange: Exchange
) -> AsyncIterator[aiohttp.ClientResponse]:
    """POST `body` as JSON and yield a 200 response whose body is still unread. Errors raised while
    the caller reads it come back through here, so they are translated too."""
    with _translate_errors(exchange.peer, url):
        async with asyncio.timeout(exchange.first_byte) as first_byte:
            headers, timeout = exchange.headers, exchange.timeout
            post = session.post(url, json=body, headers=headers, timeout=timeout)
            async with post as response:
                first_byte.reschedule(None)
                if response.status != 200:
                    async with asyncio.timeout(exchange.idle):
                        content = await response.read()
                    raise error_from_response(
                        response.status,
                        content,
                        origin=exchange.peer,
                        retry_after=response.headers.get("Retry-After"),
                    )
                yield response


async def iter_chunks(response: aiohttp.ClientResponse, idle: float | None) -> AsyncIterator[bytes]:
    """The body's bytes as they arrive, each wait bounded by `idle` seconds."""
    while True:
        async with asyncio.timeout(idle):
            chunk = await response.content.readany()
        if not chunk:
            return
        yield chunk


@contextmanager
def _translate_errors(peer: Peer, url: str) -> Iterator[None]:
    """Turn aiohttp and timeout exceptions raised inside into ConnectionFailed or RequestTimeout."""
    try:
        yield
    except TGISError:
        raise
    except aiohttp.ConnectionTimeoutError:
        # Nothing was sent yet: a connection failure, safe to retry on another worker.
        raise ConnectionFailed(f"could not connect to {url} in time", origin=peer) from None
    except TimeoutError:
        raise RequestTimeout(f"no answer from {url} in time", origin=peer) from None
    except aiohttp.ClientPayloadError:
        raise ConnectionFailed(f"the answer from {url} broke off", origin=peer) from None
    except aiohttp.ClientError as exc:
        reason = str(exc) or type(exc).__name__
        raise ConnectionFailed(f"could not talk to {url}: {reason}", origin=peer) from None
