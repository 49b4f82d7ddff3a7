"""Gateway mode's pure rules: what a request costs, and which worker answers are worth another
worker. No I/O here. The rules it shares with the PyWorker's relay (the paths, the headers, the
stream's events, the error event) are in `protocol.relay`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocol import MAX_COST
from protocol.workload import WorkloadError, workload_for_path

__all__ = ["RETRYABLE_STATUSES", "WorkloadError", "request_cost"]

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
"""Worker answers that say "not me, not now" (full, not ready, backend unreachable): another
worker may serve the request. Anything else is the request's own answer and goes back as is."""


def request_cost(path: str, payload: Mapping[str, Any], default_max_new_tokens: int) -> float:
    """Tokens the request may generate, as the worker will count them (`protocol.workload`):
    `parameters.max_new_tokens` for TGI bodies, `max_tokens` for OpenAI ones, or the default.
    At least 1, since a ticket pays for something. WorkloadError for a malformed count or one
    over `MAX_COST` (checked as an integer: a count of 400 digits has no float)."""
    tokens = max(1, workload_for_path(path, payload, default_max_new_tokens))
    if tokens > MAX_COST:
        raise WorkloadError(f"the request may generate {tokens} tokens: at most {MAX_COST:g}")
    return float(tokens)
