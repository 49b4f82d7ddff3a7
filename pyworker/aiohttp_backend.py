"""The backend through aiohttp's ClientSession: the general client, beside `pyworker.http1`.

The same surface as `BackendPool` and `BackendResponse` (`post`, then `status`, `headers`,
`content_type`, `read`, `iter_chunks`, `close`), so the relay runs on either; aiohttp's
failures come out as the ConnectionError the relay already handles. Bodies are not decoded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

__all__ = ["AiohttpBackend", "AiohttpResponse"]

_REQUEST_HEADERS = {"Content-Type": "application/json", "Accept-Encoding": "identity"}


class AiohttpResponse:
    """An answer's head, and its body read once."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = list(response.headers.items())
        self.content_type = response.content_type

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except aiohttp.ClientError as exc:
            raise ConnectionResetError(f"the backend's body broke off: {exc}") from None

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while chunk := await content.readany():
                yield chunk
        except aiohttp.ClientError as exc:
            raise ConnectionResetError(f"the backend's body broke off: {exc}") from None

    def close(self) -> None:
        self._response.close()

    async def __aenter__(self) -> AiohttpResponse:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


class AiohttpBackend:
    """Keep-alive connections to one backend through an aiohttp ClientSession of its own."""

    def __init__(self, base_url: str, *, connect_timeout_s: float) -> None:
        self._base_url = base_url.rstrip("/")
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(total=None, connect=connect_timeout_s),
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
        )

    async def post(self, path: str, body: bytes) -> AiohttpResponse:
        """Send a POST and return once the answer's head arrived."""
        try:
            response = await self._session.post(
                self._base_url + path, data=body, headers=_REQUEST_HEADERS
            )
        except aiohttp.ClientError as exc:
            if isinstance(exc, OSError):  # connecting failed, or timed out (TimeoutError)
                raise
            raise ConnectionResetError(f"backend closed the connection: {exc}") from None
        return AiohttpResponse(response)

    async def close(self) -> None:
        await self._session.close()
