"""Gateway mode's pure rules: what a request costs, where it goes on a worker, and which worker
answers are worth another worker. No I/O here. Which addresses it may connect to is
`router.addresses`, the rule registration applies too.
The rules it shares with the PyWorker's relay (the paths, the headers, the stream's events, the
error event) are in `protocol.relay`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from yarl import URL

from protocol.workload import WorkloadError, workload_for_path

__all__ = [
    "METADATA_COST",
    "RETRYABLE_STATUSES",
    "WorkloadError",
    "request_cost",
    "upstream_url",
]

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
"""Worker answers that say "not me, not now" (full, not ready, backend unreachable): another
worker may serve the request. Anything else is the request's own answer and goes back as is,
but a redirect (`protocol.relay.is_redirect`)."""


METADATA_COST = 1.0
"""What a metadata GET (`protocol.relay.METADATA_PATHS`) counts on the worker that answers it,
the least a ticket may count: the gateway routes it as any request, and the worker needs no
ticket for it, so the one taken is never sent."""


def request_cost(path: str, payload: Mapping[str, Any], default_max_new_tokens: int) -> float:
    """Tokens the request may generate, as the worker will count them (`protocol.workload`):
    at least 1, since a ticket pays for something. WorkloadError for a malformed count or a
    workload over `MAX_COST`."""
    return float(max(1, workload_for_path(path, payload, default_max_new_tokens)))


def upstream_url(worker_url: str, path: str) -> URL:
    """Where the gateway posts `path` on a worker: the worker URL's origin (scheme, host, port)
    and `path`, nothing else of it; a path, query, fragment or user info in the URL the worker
    reported is dropped, so none of them can swallow or redirect the path. ValueError for a URL
    with no origin."""
    return URL(worker_url).origin().with_path(path)
