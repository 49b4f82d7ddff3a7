"""Relaying a payload to the backend and its answer back, unchanged.

JSON answers come back with the backend's status, body and the headers that matter (error
bodies included). SSE answers are forwarded event by event as they arrive: bytes are written
up to the last complete event, so that if the backend dies mid-stream the client's stream can
still end with one well-formed TGI error event. Those rules are the gateway's too, and live in
`protocol.relay`.

The backend is reached through an aiohttp ClientSession of the relay's own, on keep-alive
connections; bodies are not decoded, cookies are not kept, and a redirect is never followed:
a 3xx from the backend is its failure (502), never relayed. Three timeouts, no total cap:
connecting (502 when it fails), the first byte of the answer (504), and silence between two
chunks of a stream (the stream ends with the error event). A slow reader holds the relay at
`write()` (aiohttp drains past its buffer limit), which stops reads from the backend in turn,
so memory per stream stays bounded.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import web
from multidict import CIMultiDictProxy

from protocol.relay import UPSTREAM_HEADERS, EventFramer, is_redirect, relayed_headers
from pyworker.errors import BackendTimeout, BackendUnavailable
from pyworker.load import Outcome, RequestSlot

__all__ = ["Relay"]

_BACKEND_FAILURES = (aiohttp.ClientError, OSError, TimeoutError)
# Idle connections are dropped before a backend may drop them (uvicorn does at 5 s): aiohttp does
# not retry a POST that went out on a connection the backend was closing.
KEEPALIVE_S = 4.0


class Relay:
    """Relays to the backend at `backend_url`; create it in a running event loop, `close()` it."""

    def __init__(
        self,
        backend_url: str,
        *,
        connect_timeout_s: float,
        first_byte_timeout_s: float,
        idle_timeout_s: float,
    ) -> None:
        self._base_url = backend_url.rstrip("/")
        self._connect_s = connect_timeout_s
        self._first_byte_s = first_byte_timeout_s
        self._idle_s = idle_timeout_s
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_S),
            timeout=aiohttp.ClientTimeout(total=None, connect=connect_timeout_s),
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        await self._session.close()

    async def forward(
        self, request: web.Request, path: str, body: bytes, slot: RequestSlot
    ) -> web.StreamResponse:
        """POST `body` (the payload's JSON bytes) to the backend and relay its answer.

        One timer serves a plain answer: the first-byte deadline until the head arrives, then
        the idle deadline while its body is read. A stream is timed by its own watchdog.
        """
        upstream, answer = await self._fetch(path, body, slot)
        if answer is not None:
            return self._plain_response(upstream, answer, slot)
        async with upstream:  # released for reuse if read to its end, else closed
            return await self._relay_stream(request, upstream, slot)

    async def get(self, path: str) -> web.Response:
        """GET `path` (metadata: `/info`, `/v1/models`) from the backend and relay its answer:
        within the first-byte timeout, or 504; unreachable, a redirect or a broken answer is
        502, as for `forward`."""
        deadline = asyncio.timeout(self._first_byte_s)
        try:
            async with deadline:
                upstream = await self._session.get(
                    self._base_url + path, headers=UPSTREAM_HEADERS, allow_redirects=False
                )
                async with upstream:
                    if is_redirect(upstream.status):
                        raise BackendUnavailable(
                            f"backend answered a redirect (HTTP {upstream.status}): never followed"
                        )
                    body = await upstream.read()
        except _BACKEND_FAILURES as exc:
            if deadline.expired():
                message = f"backend answered nothing within {self._first_byte_s:g}s"
                raise BackendTimeout(message) from None
            reason = str(exc) or type(exc).__name__
            raise BackendUnavailable(f"backend unreachable: {reason}") from None
        headers = relayed_headers(upstream.headers.items())
        return web.Response(status=upstream.status, body=body, headers=headers)

    async def _fetch(
        self, path: str, body: bytes, slot: RequestSlot
    ) -> tuple[aiohttp.ClientResponse, bytes | None]:
        """The answer's head, and its body unless it is a stream (then None)."""
        deadline = asyncio.timeout(self._first_byte_s)
        upstream: aiohttp.ClientResponse | None = None
        try:
            async with deadline:
                upstream = await self._session.post(
                    self._base_url + path,
                    data=body,
                    headers=UPSTREAM_HEADERS,
                    allow_redirects=False,
                )
                slot.first_byte_at = time.perf_counter()
                if is_redirect(upstream.status):
                    raise BackendUnavailable(
                        f"backend answered a redirect (HTTP {upstream.status}): never followed"
                    )
                if upstream.status == 200 and upstream.content_type == "text/event-stream":
                    deadline.reschedule(None)
                    return upstream, None
                deadline.reschedule(asyncio.get_running_loop().time() + self._idle_s)
                return upstream, await upstream.read()
        except _BACKEND_FAILURES as exc:
            reason = str(exc) or type(exc).__name__
            if upstream is not None:
                upstream.close()
                raise BackendUnavailable(f"backend failed mid-answer: {reason}") from None
            if deadline.expired():
                raise BackendTimeout(
                    f"backend sent nothing within {self._first_byte_s:g}s"
                ) from None
            if isinstance(exc, aiohttp.ConnectionTimeoutError):
                reason = f"no connection within {self._connect_s:g}s"
            raise BackendUnavailable(f"backend unreachable: {reason}") from None
        except BaseException:
            if upstream is not None:
                upstream.close()  # cancelled (the client left): drop the backend's connection
            raise

    def _plain_response(
        self, upstream: aiohttp.ClientResponse, body: bytes, slot: RequestSlot
    ) -> web.Response:
        if upstream.status >= 500:
            slot.outcome = Outcome.ERROR
        if upstream.status == 200:
            slot.tokens_served = _generated_tokens(upstream.headers)
        return web.Response(
            status=upstream.status, body=body, headers=relayed_headers(upstream.headers.items())
        )

    async def _relay_stream(
        self, request: web.Request, upstream: aiohttp.ClientResponse, slot: RequestSlot
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=upstream.status, headers=relayed_headers(upstream.headers.items())
        )
        await response.prepare(request)
        watchdog = IdleWatchdog(upstream, self._idle_s)
        framer = EventFramer()
        try:
            ended = await _pump_events(upstream, response, watchdog, framer)
            if not ended or watchdog.fired or framer.mid_event:
                # The backend stopped mid-event or mid-stream: end the client's stream cleanly.
                slot.outcome = Outcome.ERROR
                slot.relay_error = "idle_timeout" if watchdog.fired else "stream_interrupted"
                await response.write(framer.interrupted())
            slot.tokens_served = float(framer.events)
            await response.write_eof()
        except ConnectionResetError:
            slot.outcome = Outcome.CANCELLED  # the client went away; the backend request ends
        finally:
            watchdog.stop()
        return response


class IdleWatchdog:
    """Closes the upstream answer when no chunk arrived for `idle_s`: one timer per stream.

    The pump only stamps `last` per chunk; the timer re-arms itself for the remaining time.
    """

    def __init__(self, upstream: aiohttp.ClientResponse, idle_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._upstream = upstream
        self._idle_s = idle_s
        self.fired = False
        self.last = self._loop.time()
        self._handle = self._loop.call_at(self.last + idle_s, self._check)

    def touch(self) -> None:
        self.last = self._loop.time()

    def stop(self) -> None:
        self._handle.cancel()

    def _check(self) -> None:
        due = self.last + self._idle_s
        if self._loop.time() < due:
            self._handle = self._loop.call_at(due, self._check)
            return
        self.fired = True
        self._upstream.close()  # the pump's read fails, and the stream ends with an error event


async def _pump_events(
    upstream: aiohttp.ClientResponse,
    response: web.StreamResponse,
    watchdog: IdleWatchdog,
    framer: EventFramer,
) -> bool:
    """Write whole events as they arrive; return whether the backend ended the answer itself.

    A failing backend ends the pump (False); a failing client raises from `write`
    (ConnectionResetError), which the caller counts as a cancellation.
    """
    read = upstream.content.readany
    feed = framer.feed
    touch = watchdog.touch
    write = response.write
    while True:
        try:
            chunk = await read()
        except _BACKEND_FAILURES:
            return False
        if not chunk:
            return True
        touch()
        events = feed(chunk)
        if events:
            await write(events)


def _generated_tokens(headers: CIMultiDictProxy[str]) -> float:
    try:
        return float(headers.get("x-generated-tokens", 0.0))
    except ValueError:
        return 0.0
