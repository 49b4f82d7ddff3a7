from __future__ import annotations

import pytest

from router.gateway.policy import WorkloadError, request_cost


@pytest.mark.parametrize(
    ("path", "payload", "cost"),
    [
        ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 20}}, 20),
        ("/generate_stream", {"inputs": "x", "parameters": {}}, 512),
        ("/", {"inputs": "x", "parameters": {"max_new_tokens": 0}}, 1),
        ("/v1/chat/completions", {"messages": [], "max_tokens": 9}, 9),
        ("/v1/chat/completions", {"messages": [], "max_completion_tokens": 4}, 4),
        ("/v1/completions", {"prompt": ["a", "b", "c"], "max_tokens": 2}, 6),
        ("/v1/completions", {"prompt": "a"}, 512),
    ],
)
def test_the_cost_is_what_the_worker_will_count(
    path: str, payload: dict[str, object], cost: float
) -> None:
    assert request_cost(path, payload, 512) == cost


@pytest.mark.parametrize(
    "payload",
    [
        {"parameters": {"max_new_tokens": -1}},
        {"parameters": {"max_new_tokens": 1.5}},
        {"parameters": {"max_new_tokens": True}},
        {"parameters": "many"},
        {"parameters": {"max_new_tokens": 10**400}},  # no float holds it
        {"parameters": {"max_new_tokens": 10**12}},  # over MAX_COST
    ],
)
def test_a_malformed_count_is_refused(payload: dict[str, object]) -> None:
    with pytest.raises(WorkloadError):
        request_cost("/generate", payload, 512)
