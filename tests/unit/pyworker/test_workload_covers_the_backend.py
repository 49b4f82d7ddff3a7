"""The workload a ticket pays for covers what the backend may generate, on every relayed route.

Both sides are the real code: the worker's workload (`pyworker.envelope.workload`, which the
gateway's `request_cost` prices with too) and the embedded backend's own reading of the same
payload, through its body parsing, its OpenAI translation, its `best_of` fan-out and
`validate_request`, whose `max_new_tokens` is `generation_budget`: the most new tokens it
generates for one sequence. A payload the backend refuses generates nothing.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.relay import RELAYED_PATHS
from protocol.workload import TOKENIZE_PATHS, invocation_path
from pyworker.envelope import workload
from router.gateway.policy import request_cost
from tgi_server.errors import BackendError
from tgi_server.http.bodies import generate_request_from, stream_flag
from tgi_server.openai.requests import chat_call, completion_call
from tgi_server.validation import (
    Limits,
    check_best_of,
    check_stream_parameters,
    validate_request,
)

MAX_CLIENT_BATCH_SIZE = 4

counts = st.none() | st.integers(min_value=0, max_value=3000)
sequences = st.none() | st.integers(min_value=0, max_value=4)
prompts = st.text(min_size=1, max_size=3) | st.lists(
    st.text(min_size=1, max_size=3), min_size=1, max_size=MAX_CLIENT_BATCH_SIZE + 1
)


_ABSENT = object()


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    """Fields drawn as absent are left out; None stays, as an explicit null."""
    return {name: value for name, value in fields.items() if value is not _ABSENT}


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.just(_ABSENT) | strategy


tgi_payloads = st.builds(
    lambda parameters, stream: _present(
        {"inputs": "Hello", "parameters": _present(parameters), "stream": stream}
    ),
    st.fixed_dictionaries(
        {
            "max_new_tokens": _maybe(counts),
            "best_of": _maybe(sequences),
            "do_sample": _maybe(st.booleans()),
            "temperature": _maybe(st.sampled_from([0.5, 1.0])),
        }
    ),
    _maybe(st.booleans()),
)
chat_payloads = st.builds(
    lambda fields: _present({"messages": [{"role": "user", "content": "Hi"}], **fields}),
    st.fixed_dictionaries(
        {
            "max_tokens": _maybe(counts),
            "max_completion_tokens": _maybe(counts),
            "n": _maybe(sequences),
            "stream": _maybe(st.booleans()),
        }
    ),
)
completion_payloads = st.builds(
    lambda prompt, fields: _present({"prompt": prompt, **fields}),
    prompts,
    st.fixed_dictionaries(
        {
            "max_tokens": _maybe(counts),
            "max_completion_tokens": _maybe(counts),
            "n": _maybe(sequences),
            "best_of": _maybe(sequences),
            "stream": _maybe(st.booleans()),
        }
    ),
)


@st.composite
def limits(draw: st.DrawFn) -> Limits:
    max_total_tokens = draw(st.integers(min_value=2, max_value=4096))
    max_input_tokens = draw(st.integers(min_value=1, max_value=max_total_tokens - 1))
    return Limits(
        max_input_tokens=max_input_tokens,
        max_total_tokens=max_total_tokens,
        max_best_of=draw(st.integers(min_value=1, max_value=4)),
    )


def backend_budget(path: str, payload: dict[str, Any], limits: Limits, input_length: int) -> int:
    """The most new tokens the embedded backend generates for `payload` on `path`, every
    sequence together, with prompts of `input_length` tokens; 0 when it refuses the payload."""

    def encode(text: str) -> list[int]:
        return [1] * input_length

    if path in TOKENIZE_PATHS:
        return 0  # they tokenize, and generate nothing
    if path == "/invocations":  # the route its body stands for, as the backend dispatches it
        path = invocation_path(payload) or "/"
    try:
        if path == "/v1/chat/completions":
            requests = [chat_call(payload, _render, template_renders_tools=False).request]
        elif path == "/v1/completions":
            requests = list(completion_call(payload, MAX_CLIENT_BATCH_SIZE).requests)
        else:
            request = generate_request_from(payload)
            streamed = path == "/generate_stream" or (path == "/" and stream_flag(payload))
            if streamed:
                check_stream_parameters(request.parameters)
            best_of = max(request.parameters.best_of or 1, 1)
            if best_of > 1:
                check_best_of(best_of, limits)
            requests = [request] * best_of
        validated = [validate_request(r, limits, encode, seed_source=lambda: 0) for r in requests]
    except BackendError:
        return 0
    return sum(request.max_new_tokens for request in validated)


def _render(messages: list[dict[str, Any]], tools: list[Any] | None) -> str:
    return "".join(str(message["content"]) for message in messages)


@st.composite
def relayed_requests(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    path = draw(st.sampled_from(RELAYED_PATHS))
    if path in ("/v1/chat/completions", "/chat_tokenize"):
        return path, draw(chat_payloads)
    if path == "/v1/completions":
        return path, draw(completion_payloads)
    if path == "/invocations":
        return path, draw(tgi_payloads | chat_payloads | completion_payloads)
    return path, draw(tgi_payloads)


@settings(max_examples=400, deadline=None)
@given(relayed_requests(), limits(), st.integers(min_value=1, max_value=4096))
def test_the_backend_never_generates_more_than_the_workload(
    request: tuple[str, dict[str, Any]], limits: Limits, input_length: int
) -> None:
    path, payload = request
    default = limits.max_total_tokens  # what a worker counts when no limit is given
    counted = workload(path, payload, default)
    assert backend_budget(path, payload, limits, input_length) <= counted
    assert request_cost(path, payload, default) >= counted  # the gateway pays for as much
