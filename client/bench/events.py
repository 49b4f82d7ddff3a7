"""Reading token events off a streaming answer, each stamped with the time its bytes were read.

TGI (`/generate_stream`): one event per token; every token event counts, special ones included;
the final event's `details.generated_tokens` is the server's count. OpenAI-compatible
(`/v1/completions`, `stream: true`): every chunk with text is a token event; the count is the
final `usage.completion_tokens`. Comments and `[DONE]` are skipped; an error event fails the
request. Events that arrive in one read share its time stamp (their gaps are 0, as observed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import orjson

from protocol.sse import SSEError, SSEParser

__all__ = ["Dialect", "EventHook", "StreamFailure", "TokenTally"]

Dialect = Literal["tgi", "openai"]
EventHook = Callable[[dict[str, Any], float], None]
"""Called with every decoded event and its read time (for checks of the bench itself)."""


class StreamFailure(Exception):
    """An error event, or bytes that are not the stream format."""


class TokenTally:
    """Feed it chunks with their read time; it records token arrivals and the server's count."""

    def __init__(
        self, dialect: Dialect, on_token: Callable[[float], None], on_event: EventHook | None = None
    ) -> None:
        self._parser = SSEParser()
        self._dialect = dialect
        self._on_token = on_token
        self._on_event = on_event
        self.server_tokens: int | None = None
        self.finished = False

    def feed(self, chunk: bytes, now: float) -> None:
        try:
            events = self._parser.feed(chunk)
        except SSEError as exc:
            raise StreamFailure(f"malformed event stream: {exc}") from None
        for event in events:
            if event.data and event.data != "[DONE]":
                self._handle(_decode(event.data), now)
            elif event.data == "[DONE]":
                self.finished = True

    def _handle(self, data: dict[str, Any], now: float) -> None:
        if "error" in data:
            raise StreamFailure(f"error event: {data['error']}")
        if self._on_event is not None:
            self._on_event(data, now)
        if self._dialect == "tgi":
            self._tgi(data, now)
        else:
            self._openai(data, now)

    def _tgi(self, data: dict[str, Any], now: float) -> None:
        if data.get("token") is not None:
            self._on_token(now)
        if data.get("generated_text") is not None:
            self.finished = True
            details = data.get("details")
            if isinstance(details, dict) and isinstance(details.get("generated_tokens"), int):
                self.server_tokens = details["generated_tokens"]

    def _openai(self, data: dict[str, Any], now: float) -> None:
        for choice in data.get("choices") or []:
            text = choice.get("text") or (choice.get("delta") or {}).get("content")
            if text:
                self._on_token(now)
                break
        usage = data.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self.server_tokens = usage["completion_tokens"]


def _decode(text: str) -> dict[str, Any]:
    try:
        data = orjson.loads(text)
    except ValueError:
        raise StreamFailure("an event is not JSON") from None
    if not isinstance(data, dict):
        raise StreamFailure("an event is not a JSON object")
    return data
