"""The workload of a request in tokens: the most its backend may generate for that payload on
that route, which a ticket's `cost` must cover (§4.3). The PyWorker counts it, the gateway and
the client price with it: one function for all three.

    /generate, /generate_stream, /   `parameters.best_of` × `parameters.max_new_tokens`
    /v1/chat/completions             `n` × `max_tokens` (else `max_completion_tokens`)
    /v1/completions                  `n` × `max_tokens` × the number of prompts
    /invocations                     as the route its body stands for (`invocation_path`)
    /tokenize, /chat_tokenize        `TOKENIZE_WORKLOAD` (1): they generate nothing

A count that is absent or null is the backend's default: one sequence (`best_of`, `n`), and
`default_max_new_tokens` new tokens a sequence, which a worker sets to its backend's
`max_total_tokens` (TGI 3.x generates "as many as fit" when no limit is given). A `best_of` or
`n` of 0 counts as 1, as the backend runs one sequence for it. `/v1/completions` does not read
`max_completion_tokens` (neither TGI's router nor ours does): there it is not counted, and the
request is priced at the default. `n` is counted as asked: our backend refuses `n` above 1,
and a backend that honours it is covered.

The tokenizing routes generate nothing, but a ticket must still be spent on them (the backend
tokenizes, and renders a chat template, on a prompt of up to the body limit) and the request
counts while it runs: they cost one token, whatever the prompt. Their work is CPU time on the
backend's validation threads, in proportion to the prompt and bounded by the body limit, not
the model's time that a workload measures.

A workload is bounded by `MAX_COST`, the most a ticket can pay for: a larger one (a count of
400 digits included) is a `WorkloadError`, so no one downstream meets an integer that has no
float.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocol.route import MAX_COST

__all__ = [
    "OPENAI_PATHS",
    "TOKENIZE_PATHS",
    "TOKENIZE_WORKLOAD",
    "WorkloadError",
    "invocation_path",
    "workload_for_path",
    "workload_of",
]

OPENAI_PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})
TOKENIZE_PATHS = frozenset({"/tokenize", "/chat_tokenize"})
TOKENIZE_WORKLOAD = 1
"""What a request to a route of `TOKENIZE_PATHS` costs: one token, whatever its prompt."""


class WorkloadError(ValueError):
    """The payload's counts are not something a workload can be computed from, or the workload
    is over `MAX_COST`."""


def workload_of(payload: Mapping[str, Any], default_max_new_tokens: int) -> int:
    """The workload of a TGI body (`/generate`, `/generate_stream`, `/`): `best_of` ×
    `max_new_tokens`, each its default when absent or null."""
    return _bounded(_tgi_workload(payload, default_max_new_tokens))


def workload_for_path(path: str, payload: Mapping[str, Any], default_max_new_tokens: int) -> int:
    """The workload of `payload` sent to `path`, by the table above."""
    if path == "/invocations":
        path = invocation_path(payload) or "/"  # a body the backend refuses: priced as TGI's
    if path in TOKENIZE_PATHS:
        return TOKENIZE_WORKLOAD
    if path == "/v1/chat/completions":
        per_sequence = _optional_count(payload, "max_tokens", "")
        if per_sequence is None:
            per_sequence = _count(payload, "max_completion_tokens", "", default_max_new_tokens)
        tokens = _sequences(payload, "n", "") * per_sequence
    elif path == "/v1/completions":
        per_sequence = _count(payload, "max_tokens", "", default_max_new_tokens)
        tokens = _sequences(payload, "n", "") * per_sequence * _prompts(payload)
    else:
        tokens = _tgi_workload(payload, default_max_new_tokens)
    return _bounded(tokens)


def invocation_path(payload: Mapping[str, Any]) -> str | None:
    """The route a body sent to SageMaker's `/invocations` stands for, tried in TGI's order: a
    compat body (`inputs`) is `/`, a chat (`messages`) `/v1/chat/completions`, a completion
    (`prompt`) `/v1/completions`; None for a body with none of them."""
    if "inputs" in payload:
        return "/"
    if "messages" in payload:
        return "/v1/chat/completions"
    if "prompt" in payload:
        return "/v1/completions"
    return None


def _tgi_workload(payload: Mapping[str, Any], default_max_new_tokens: int) -> int:
    parameters = payload.get("parameters")
    if parameters is None:
        return default_max_new_tokens
    if not isinstance(parameters, Mapping):
        raise WorkloadError("`parameters` must be a JSON object")
    per_sequence = _count(parameters, "max_new_tokens", "parameters.", default_max_new_tokens)
    return _sequences(parameters, "best_of", "parameters.") * per_sequence


def _prompts(payload: Mapping[str, Any]) -> int:
    """A list of prompts is one request each; anything else is one prompt (or refused)."""
    prompt = payload.get("prompt")
    return max(len(prompt), 1) if isinstance(prompt, list) else 1


def _sequences(body: Mapping[str, Any], field: str, prefix: str) -> int:
    """How many sequences the backend runs for `field` (`best_of`, `n`): at least one."""
    return max(_count(body, field, prefix, 1), 1)


def _count(body: Mapping[str, Any], field: str, prefix: str, default: int) -> int:
    value = _optional_count(body, field, prefix)
    return default if value is None else value


def _optional_count(body: Mapping[str, Any], field: str, prefix: str) -> int | None:
    """`body[field]` as a count of tokens or sequences; None when absent or null."""
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise WorkloadError(f"`{prefix}{field}` must be an integer")
    if value < 0:
        raise WorkloadError(f"`{prefix}{field}` must not be negative")
    return value


def _bounded(tokens: int) -> int:
    if tokens > MAX_COST:
        raise WorkloadError(
            f"the request may generate more than {MAX_COST:.0f} tokens, the most a ticket pays "
            "for: ask for fewer (max_new_tokens × best_of, max_tokens × n × prompts)"
        )
    return tokens
