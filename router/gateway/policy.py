"""Gateway mode's pure rules: which paths it proxies, what a request costs, which worker answers
are worth another worker, and how a stream is cut into whole events. No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocol import MAX_COST
from protocol.workload import WorkloadError, workload_for_path

__all__ = [
    "GATEWAY_PATHS",
    "MAX_EVENT_BYTES",
    "RETRYABLE_STATUSES",
    "EventFramer",
    "WorkloadError",
    "request_cost",
]

GATEWAY_PATHS = ("/", "/generate", "/generate_stream", "/v1/chat/completions", "/v1/completions")
"""The worker paths `/endpoints/{name}<path>` reaches: TGI's, its compat route, OpenAI's."""

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
"""Worker answers that say "not me, not now" (full, not ready, backend unreachable): another
worker may serve the request. Anything else is the request's own answer and goes back as is."""

MAX_EVENT_BYTES = 1 << 20
"""A stream piece without an event boundary after this many bytes is passed on as it is."""


def request_cost(path: str, payload: Mapping[str, Any], default_max_new_tokens: int) -> float:
    """Tokens the request may generate, as the worker will count them (`protocol.workload`):
    `parameters.max_new_tokens` for TGI bodies, `max_tokens` for OpenAI ones, or the default.
    At least 1, since a ticket pays for something. WorkloadError for a malformed count or one
    over `MAX_COST` (checked as an integer: a count of 400 digits has no float)."""
    tokens = max(1, workload_for_path(path, payload, default_max_new_tokens))
    if tokens > MAX_COST:
        raise WorkloadError(f"the request may generate {tokens} tokens: at most {MAX_COST:g}")
    return float(tokens)


class EventFramer:
    """Cuts a byte stream into whole server-sent events (each ending with a blank line), so a
    relay writes one complete event at a time and never half of one."""

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._buffer = b""
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> bytes:
        """The whole events this chunk completes, together (b"" when none): everything up to
        the last blank line. One cut per chunk, however many events it holds: a relay that
        fell behind gets large chunks, and cutting them event by event was quadratic."""
        buffer = self._buffer + chunk
        end = _last_event_end(buffer)
        if len(buffer) - end > self._max:  # a piece with no boundary is not held forever
            end = len(buffer)
        self._buffer = buffer[end:]
        return buffer[:end]

    def rest(self) -> bytes:
        """What is left when the stream ends: an unterminated last event, or nothing."""
        rest, self._buffer = self._buffer, b""
        return rest


def _last_event_end(buffer: bytes) -> int:
    """The index just past the last blank line (`\\n\\n`, `\\r\\n\\r\\n` or `\\r\\r`); 0 if none."""
    end = 0
    for separator in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        found = buffer.rfind(separator)
        if found >= 0:
            end = max(end, found + len(separator))
    return end
