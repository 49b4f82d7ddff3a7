from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from protocol import (
    MAX_COST,
    GenerateRequest,
    RouteRequest,
    WorkloadError,
    workload_for_path,
    workload_of,
)


def test_parameters_omitted_means_sampling_as_in_tgi() -> None:
    assert GenerateRequest.model_validate({"inputs": "x"}).parameters.do_sample is True
    present = GenerateRequest.model_validate({"inputs": "x", "parameters": {}})
    assert present.parameters.do_sample is False


@pytest.mark.parametrize(
    "parameters",
    [{"max_new_tokens": 3.0}, {"temperature": "1"}, {"stop": None}, {"do_sample": None}],
)
def test_generate_parameters_are_typed_like_tgis(parameters: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        GenerateRequest.model_validate({"inputs": "x", "parameters": parameters})


def test_unknown_fields_are_ignored() -> None:
    request = GenerateRequest.model_validate(
        {"inputs": "x", "stream": True, "parameters": {"z": 1}}
    )
    assert request.inputs == "x"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"inputs": "x", "parameters": {"max_new_tokens": 12}}, 12),
        ({"inputs": "x", "parameters": {"max_new_tokens": None}}, 2048),
        ({"inputs": "x", "parameters": {}}, 2048),
        ({"inputs": "x"}, 2048),
    ],
)
def test_workload_is_max_new_tokens_or_the_backend_default(
    payload: dict[str, Any], expected: int
) -> None:
    assert workload_of(payload, 2048) == expected


@pytest.mark.parametrize(
    "parameters", [[], {"max_new_tokens": "10"}, {"max_new_tokens": -1}, {"max_new_tokens": True}]
)
def test_workload_refuses_malformed_max_new_tokens(parameters: Any) -> None:
    with pytest.raises(WorkloadError):
        workload_of({"inputs": "x", "parameters": parameters}, 100)


@pytest.mark.parametrize("cost", [0, -1, float("nan"), float("inf"), MAX_COST * 2])
def test_route_request_refuses_absurd_costs(cost: float) -> None:
    with pytest.raises(ValidationError, match="cost"):
        RouteRequest.model_validate({"endpoint": "default", "cost": cost})


def test_route_request_defaults() -> None:
    request = RouteRequest.model_validate({"endpoint": "default"})
    assert (request.cost, request.request_idx) == (100.0, None)


@pytest.mark.parametrize(
    ("path", "payload", "expected"),
    [
        ("/v1/chat/completions", {"messages": [], "max_tokens": 30}, 30),
        ("/v1/chat/completions", {"messages": [], "max_completion_tokens": 12}, 12),
        ("/v1/chat/completions", {"messages": []}, 2048),
        ("/v1/completions", {"prompt": ["a", "b", "c"], "max_tokens": 10}, 30),
        ("/v1/completions", {"prompt": "a", "max_tokens": 10}, 10),
        ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 7}}, 7),
        ("/", {"inputs": "x", "parameters": {"max_new_tokens": 7}, "stream": True}, 7),
        # best_of candidates are each generated whole
        ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 7, "best_of": 2}}, 14),
        ("/generate_stream", {"inputs": "x", "parameters": {"best_of": 3}}, 3 * 2048),
        ("/", {"inputs": "x", "parameters": {"max_new_tokens": 7, "best_of": 0}}, 7),
        ("/", {"inputs": "x", "parameters": {"max_new_tokens": 7, "best_of": None}}, 7),
        # n choices, each up to max_tokens
        ("/v1/chat/completions", {"messages": [], "max_tokens": 30, "n": 3}, 90),
        ("/v1/chat/completions", {"messages": [], "max_completion_tokens": 12, "n": 2}, 24),
        ("/v1/chat/completions", {"messages": [], "n": 2}, 2 * 2048),
        ("/v1/completions", {"prompt": ["a", "b"], "max_tokens": 10, "n": 3}, 60),
        # the backend ignores max_completion_tokens on /v1/completions: its default counts
        ("/v1/completions", {"prompt": "a", "max_completion_tokens": 5}, 2048),
        ("/v1/completions", {"prompt": ["a", "b"], "max_completion_tokens": 5}, 2 * 2048),
        # SageMaker's route: the route its body stands for, in TGI's order
        ("/invocations", {"inputs": "x", "parameters": {"max_new_tokens": 7, "best_of": 2}}, 14),
        ("/invocations", {"messages": [], "max_tokens": 30, "n": 3}, 90),
        ("/invocations", {"prompt": ["a", "b", "c"], "max_tokens": 10}, 30),
        ("/invocations", {"inputs": "x", "messages": [], "max_tokens": 30}, 2048),  # inputs first
        ("/invocations", {"nothing": 1}, 2048),  # refused by the backend, priced as TGI's
        # the tokenizing routes generate nothing: one token, whatever their counts say
        ("/tokenize", {"inputs": "x" * 10_000, "parameters": {"max_new_tokens": 7}}, 1),
        ("/chat_tokenize", {"messages": [], "max_tokens": 10**9, "n": 5}, 1),
    ],
)
def test_workload_by_route(path: str, payload: dict[str, Any], expected: int) -> None:
    assert workload_for_path(path, payload, 2048) == expected


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/generate", {"parameters": {"max_new_tokens": 10**400}}),  # no float holds it
        ("/generate", {"parameters": {"max_new_tokens": 10**12}}),
        ("/generate", {"parameters": {"max_new_tokens": 1000, "best_of": 1001}}),
        ("/v1/chat/completions", {"max_tokens": 1000, "n": 10**400}),
        ("/v1/completions", {"prompt": ["a"] * 1001, "max_tokens": 1000}),
    ],
)
def test_a_workload_over_what_a_ticket_pays_for_is_refused(
    path: str, payload: dict[str, Any]
) -> None:
    with pytest.raises(WorkloadError, match="ask for fewer"):
        workload_for_path(path, payload, 2048)


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/generate", {"parameters": {"best_of": -1}}, "parameters.best_of"),
        ("/generate", {"parameters": {"best_of": "2"}}, "parameters.best_of"),
        ("/v1/chat/completions", {"n": 1.5}, "n"),
        ("/v1/completions", {"prompt": "a", "n": True}, "n"),
    ],
)
def test_malformed_sequence_counts_are_refused(
    path: str, payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(WorkloadError, match=f"`{field}`"):
        workload_for_path(path, payload, 2048)


def test_openai_workload_refuses_non_integers() -> None:
    with pytest.raises(WorkloadError, match="max_tokens"):
        workload_for_path("/v1/chat/completions", {"max_tokens": "9"}, 100)
