from __future__ import annotations

import pytest

from router.gateway.policy import (
    WorkloadError,
    request_cost,
    upstream_url,
)


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
        ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 20, "best_of": 2}}, 40),
        ("/v1/chat/completions", {"messages": [], "max_tokens": 9, "n": 4}, 36),
        ("/v1/completions", {"prompt": ["a", "b"], "max_tokens": 2, "n": 3}, 12),
        ("/v1/completions", {"prompt": "a", "max_completion_tokens": 4}, 512),
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


@pytest.mark.parametrize(
    "worker_url",
    [
        "http://10.0.0.5:8001",
        "http://10.0.0.5:8001/",
        "http://10.0.0.5:8001#",
        "http://10.0.0.5:8001/#x",
        "http://10.0.0.5:8001?",
        "http://10.0.0.5:8001/?a=b",
        "http://10.0.0.5:8001/other/place",
        "http://user:secret@10.0.0.5:8001",
    ],
)
def test_the_path_goes_to_the_workers_origin_whatever_its_url_holds(worker_url: str) -> None:
    url = upstream_url(worker_url, "/generate")
    assert str(url) == "http://10.0.0.5:8001/generate"
    assert (url.path, url.query_string, url.fragment, url.user) == ("/generate", "", "", None)


def test_the_compat_route_keeps_its_slash() -> None:
    assert str(upstream_url("https://w.example:443/x?y#z", "/")) == "https://w.example/"
