"""Vast's PyWorker reports (integer id, no state, no endpoint) read by our report model."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from protocol import WorkerStatusReport

VAST_REPORT: dict[str, Any] = {
    "id": 4242,
    "mtoken": "secret",
    "version": "1.1.0",
    "loadtime": 0.0,
    "cur_load": 0.0,
    "rej_load": 0.0,
    "new_load": 0.0,
    "error_msg": "",
    "max_perf": 0.0,
    "cur_perf": 0.0,
    "cur_capacity": 0,
    "max_capacity": 0,
    "num_requests_working": 0,
    "num_requests_recieved": 0,
    "additional_disk_usage": 0.0,
    "disk_usage": 12.5,
    "working_request_idxs": [],
    "url": "http://10.0.0.1:40000",
}


@pytest.mark.parametrize(
    ("changes", "state"),
    [
        ({}, "loading"),
        ({"loadtime": 12.0, "max_perf": 80.0}, "ready"),
        ({"max_perf": 80.0}, "ready"),
        ({"loadtime": 12.0, "error_msg": "Benchmark failed"}, "error"),
    ],
)
def test_a_vast_report_gets_our_state(changes: dict[str, Any], state: str) -> None:
    report = WorkerStatusReport.model_validate({**VAST_REPORT, **changes})
    assert report.state.value == state
    assert (report.id, report.endpoint, report.url) == ("4242", "default", VAST_REPORT["url"])


def test_its_in_flight_load_is_its_cur_load() -> None:
    report = {**VAST_REPORT, "cur_load": 96.0, "max_perf": 50.0}
    assert WorkerStatusReport.model_validate(report).in_flight_workload == 96.0


def test_our_own_reports_keep_their_state_and_load() -> None:
    ours = {"id": "w1", "url": "http://w1", "state": "busy", "endpoint": "chat", "cur_load": 3.0}
    report = WorkerStatusReport.model_validate(ours)
    assert (report.state.value, report.endpoint, report.in_flight_workload) == ("busy", "chat", 0)


@pytest.mark.parametrize("body", [None, [], "text", 3])
def test_anything_but_an_object_is_refused(body: Any) -> None:
    with pytest.raises(ValidationError):
        WorkerStatusReport.model_validate(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
report_keys = st.sampled_from(
    ["id", "url", "state", "loadtime", "max_perf", "cur_load", "error_msg", "endpoint", "mtoken"]
)


@given(body=st.dictionaries(report_keys, json_values) | json_values)
def test_any_body_is_either_a_report_or_a_validation_error(body: Any) -> None:
    try:
        report = WorkerStatusReport.model_validate(body)
    except ValidationError:
        return  # the router answers 422
    assert report.endpoint


@pytest.mark.parametrize("field", ["max_perf", "cur_load", "loadtime", "in_flight_workload"])
@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_a_report_with_a_number_that_is_not_finite_is_refused(field: str, value: float) -> None:
    # An infinite max_perf made the worker's expected wait zero: it won every route.
    with pytest.raises(ValidationError, match=field):
        WorkerStatusReport.model_validate({**VAST_REPORT, field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("error_msg", "x" * 4097),
        ("version", "1" * 65),
        ("warnings", ["w"] * 17),
        ("warnings", ["w" * 1025]),
        ("endpoint", "e" * 129),
    ],
)
def test_a_report_holds_only_bounded_texts_and_lists(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        WorkerStatusReport.model_validate({**VAST_REPORT, field: value})
