"""The workload of a request in tokens: what a ticket's `cost` must cover (§4.3).

TGI bodies count `parameters.max_new_tokens`; OpenAI bodies (`/v1/chat/completions`,
`/v1/completions`) count `max_tokens` (or `max_completion_tokens`), once per prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["OPENAI_PATHS", "WorkloadError", "workload_for_path", "workload_of"]

OPENAI_PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})


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
    return _token_count(parameters, "max_new_tokens", "parameters.", default_max_new_tokens)


def workload_for_path(path: str, payload: Mapping[str, Any], default_max_new_tokens: int) -> int:
    """The workload of `payload` sent to `path`: OpenAI routes by `max_tokens`, others as TGI."""
    if path not in OPENAI_PATHS:
        return workload_of(payload, default_max_new_tokens)
    field = "max_completion_tokens" if payload.get("max_tokens") is None else "max_tokens"
    per_prompt = _token_count(payload, field, "", default_max_new_tokens)
    prompt = payload.get("prompt")
    prompts = len(prompt) if path == "/v1/completions" and isinstance(prompt, list) else 1
    return per_prompt * max(prompts, 1)


def _token_count(body: Mapping[str, Any], field: str, prefix: str, default: int) -> int:
    value = body.get(field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise WorkloadError(f"`{prefix}{field}` must be an integer")
    if value < 0:
        raise WorkloadError(f"`{prefix}{field}` must not be negative")
    return value
