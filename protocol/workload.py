"""The workload of a TGI payload in tokens: what a ticket's `cost` must cover (§4.3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["WorkloadError", "workload_of"]


class WorkloadError(ValueError):
    """The payload's `max_new_tokens` is not something a workload can be computed from."""


def workload_of(payload: Mapping[str, Any], default_max_new_tokens: int) -> int:
    """`parameters.max_new_tokens`, or `default_max_new_tokens` when it is absent or null.

    TGI 3.x generates "as many as fit" when `max_new_tokens` is absent, so the default a worker
    passes is the most its backend could generate for one request (its `max_total_tokens`).
    """
    parameters = payload.get("parameters")
    if parameters is None:
        return default_max_new_tokens
    if not isinstance(parameters, Mapping):
        raise WorkloadError("`parameters` must be a JSON object")
    max_new_tokens = parameters.get("max_new_tokens")
    if max_new_tokens is None:
        return default_max_new_tokens
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise WorkloadError("`parameters.max_new_tokens` must be an integer")
    if max_new_tokens < 0:
        raise WorkloadError("`parameters.max_new_tokens` must not be negative")
    return max_new_tokens
