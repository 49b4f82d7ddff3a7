from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.endpoints.models import EndpointState, endpoint_from_body, worker_group_from_body
from router.errors import InvalidRequest


def test_a_minimal_endpoint_gets_vasts_defaults_and_a_key() -> None:
    endpoint = endpoint_from_body({"name": "chat"})
    assert endpoint.endpoint_state is EndpointState.ACTIVE
    assert (endpoint.params.target_util, endpoint.params.cold_mult) == (0.9, 2.5)
    assert len(endpoint.api_key.get_secret_value()) >= 16
    assert "api_key" not in endpoint.view()
    assert endpoint.api_key.get_secret_value() not in repr(endpoint)


def test_an_update_keeps_what_it_does_not_name() -> None:
    current = endpoint_from_body(
        {"name": "chat", "max_workers": 8, "template": {"MODEL_ID": "a/b", "backend": "tgi"}}
    )
    updated = endpoint_from_body(
        {"target_util": 0.5, "template": {"launch_args": ["--q"]}}, current=current
    )
    assert (updated.params.max_workers, updated.params.target_util) == (8, 0.5)
    assert updated.template.model_id == "a/b"
    assert updated.template.launch_args == ["--q"]
    assert updated.api_key == current.api_key


def test_the_stored_form_reads_back_the_same() -> None:
    endpoint = endpoint_from_body({"name": "e", "min_load": 50, "endpoint_state": "stopped"})
    endpoint = endpoint.model_copy(update={"created_at": 1234.5})
    assert endpoint_from_body(endpoint.stored(), stored=True) == endpoint
    assert endpoint_from_body({"name": "e", "created_at": 99.0}).created_at == 0.0


def test_private_workers_are_refused_until_allowed_and_the_choice_is_kept() -> None:
    endpoint = endpoint_from_body({"name": "e"})
    assert endpoint.allow_private_workers is False
    allowed = endpoint_from_body({"allow_private_workers": True}, current=endpoint)
    assert allowed.view()["allow_private_workers"] is True
    assert endpoint_from_body(allowed.stored(), stored=True) == allowed
    assert endpoint_from_body({"min_load": 5}, current=allowed).allow_private_workers is True


@pytest.mark.parametrize(
    "body",
    [
        {"name": "e", "launch_args": []},
        {"name": "e", "template": {"launch_args": ["x" * 2000]}},
        {"name": "e", "template": "tgi"},
        {"name": "e", "api_key": "has space"},
        {"name": "e" * 65},
    ],
)
def test_bad_bodies_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        endpoint_from_body(body)


@given(
    st.dictionaries(
        st.text(max_size=12), st.one_of(st.none(), st.floats(), st.text(), st.integers())
    )
)
def test_any_body_is_an_endpoint_or_a_clean_422(body: dict[str, Any]) -> None:
    problem: InvalidRequest | None = None
    try:
        endpoint_from_body({"name": "e", **body})
    except InvalidRequest as exc:  # anything else escapes and fails the test
        problem = exc
    assert problem is None or (problem.status == 422 and problem.message)


def test_worker_groups_validate_their_fields() -> None:
    group = worker_group_from_body({"name": "g", "endpoint": "e", "gpu_ram": 48})
    assert group.gpu_ram == 48
    with pytest.raises(InvalidRequest, match="gpu_ram"):
        worker_group_from_body({"name": "g", "endpoint": "e", "gpu_ram": -1})
    with pytest.raises(InvalidRequest, match="unknown"):
        worker_group_from_body({"name": "g", "endpoint": "e", "gpus": 2})
