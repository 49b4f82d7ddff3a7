"""Relaying a payload to the backend and its answer back, unchanged.

JSON answers come back with the backend's status, body and the headers that matter (error
bodies included). SSE answers are forwarded event by event as they arrive: bytes are written
up to the last complete event (`\\n\\n`), so that if the backend dies mid-stream the client's
stream can still end with one well-formed TGI error event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from protocol import encode_json_event
from pyworker.errors import BackendUnavailable
from pyworker.load import Outcome, RequestSlot

__all__ = ["Relay", "relayed_headers"]

# Per-connection headers, or ones aiohttp recomputes for the new response.
_NOT_RELAYED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
        "date",
        "server",
    }
)

INCOMPLETE_STREAM_EVENT = encode_json_event(
    {"error": "Incomplete generation stream", "error_type": "incomplete_generation_stream"}
)


def relayed_headers(headers: Mapping[str, str]) -> CIMultiDict[str]:
    return CIMultiDict(
        (name, value) for name, value in headers.items() if name.lower() not in _NOT_RELAYED
    )


class Relay:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        backend_url: str,
        *,
        connect_timeout_s: float,
        idle_timeout_s: float,
    ) -> None:
        self._session = session
        self._backend_url = backend_url.rstrip("/")
        # No total cap: a healthy stream may run as long as it keeps sending.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout_s, sock_read=idle_timeout_s
        )

    async def forward(
        self, request: web.Request, path: str, payload: Any, slot: RequestSlot
    ) -> web.StreamResponse:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        try:
            upstream = await self._session.post(
                f"{self._backend_url}{path}",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=self._timeout,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BackendUnavailable(f"backend unreachable: {exc or type(exc).__name__}") from None
        async with upstream:
            if _is_event_stream(upstream) and upstream.status == 200:
                return await self._relay_stream(request, upstream, slot)
            return await self._relay_body(upstream, slot)

    async def _relay_body(
        self, upstream: aiohttp.ClientResponse, slot: RequestSlot
    ) -> web.Response:
        try:
            body = await upstream.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BackendUnavailable(
                f"backend failed mid-answer: {exc or type(exc).__name__}"
            ) from None
        if upstream.status >= 500:
            slot.outcome = Outcome.ERROR
        slot.tokens_served = _generated_tokens(upstream) if upstream.status == 200 else 0.0
        return web.Response(
            status=upstream.status, body=body, headers=relayed_headers(upstream.headers)
        )

    async def _relay_stream(
        self, request: web.Request, upstream: aiohttp.ClientResponse, slot: RequestSlot
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=upstream.status, headers=relayed_headers(upstream.headers)
        )
        await response.prepare(request)
        try:
            events, complete = await _pump_events(upstream, response)
            if not complete:
                # The backend stopped mid-event or mid-stream: end the client's stream cleanly.
                slot.outcome = Outcome.ERROR
                await response.write(INCOMPLETE_STREAM_EVENT)
            slot.tokens_served = float(events)
            await response.write_eof()
        except ConnectionResetError:
            slot.outcome = Outcome.CANCELLED  # the client went away; the backend request ends
        return response


async def _pump_events(
    upstream: aiohttp.ClientResponse, response: web.StreamResponse
) -> tuple[int, bool]:
    """Write whole events as they arrive; return (events written, whether the stream was whole)."""
    pending = b""
    events = 0
    try:
        async for chunk in upstream.content.iter_any():
            pending += chunk
            cut = pending.rfind(b"\n\n") + 2
            if cut >= 2:
                events += pending.count(b"\n\n", 0, cut)
                await response.write(pending[:cut])
                pending = pending[cut:]
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, TimeoutError):
        return events, False
    return events, not pending.strip()


def _is_event_stream(upstream: aiohttp.ClientResponse) -> bool:
    return upstream.content_type == "text/event-stream"


def _generated_tokens(upstream: aiohttp.ClientResponse) -> float:
    try:
        return float(upstream.headers.get("x-generated-tokens", "0"))
    except ValueError:
        return 0.0
