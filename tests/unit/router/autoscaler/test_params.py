from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.autoscaler.params import EndpointParams, ParamsError


def test_the_defaults_are_vasts() -> None:
    params = EndpointParams()
    assert (params.target_util, params.cold_mult, params.cold_workers) == (0.9, 2.5, 5)
    assert (params.max_workers, params.max_queue_time, params.target_queue_time) == (16, 30, 10)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"target_util": 1.5},
            "target_util: Input should be less than or equal to 1 (valid range: (0.0, 1.0])",
        ),
        (
            {"max_workers": -1},
            "max_workers: Input should be greater than or equal to 0 (valid range: [0, 10000])",
        ),
        ({"cold_mult": "lots"}, "cold_mult: Input should be a valid number"),
        ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
    ],
)
def test_a_bad_value_names_its_valid_range(values: dict[str, object], expected: str) -> None:
    with pytest.raises(ParamsError) as caught:
        EndpointParams.parse(values)
    assert expected in str(caught.value)


def test_max_workers_below_the_minimum_is_refused() -> None:
    with pytest.raises(ParamsError, match=r"max_workers must be in \[6, 10000\]"):
        EndpointParams.parse({"max_workers": 4, "min_workers": 6, "cold_workers": 0})


def test_an_unset_cold_pool_shrinks_to_a_small_max_workers() -> None:
    assert EndpointParams.parse({"max_workers": 2}).cold_workers == 2
    assert EndpointParams.parse({"max_workers": 0}).cold_workers == 0
    assert EndpointParams.parse({"max_workers": 40}).cold_workers == 5
    assert EndpointParams.parse({}).cold_workers == 5


@pytest.mark.parametrize("bad", [float("inf"), "1e999", "many", None])
def test_a_max_workers_no_integer_holds_is_named_not_a_crash(bad: object) -> None:
    with pytest.raises(ParamsError, match="max_workers"):
        EndpointParams.parse({"max_workers": bad})


def test_a_cold_pool_asked_for_is_never_shrunk() -> None:
    with pytest.raises(ParamsError, match=r"max_workers must be in \[4, 10000\]"):
        EndpointParams.parse({"max_workers": 2, "cold_workers": 4})


def test_target_queue_time_above_max_queue_time_is_refused() -> None:
    with pytest.raises(ParamsError, match="target_queue_time"):
        EndpointParams.parse({"target_queue_time": 40, "max_queue_time": 30})


@given(st.floats(min_value=0.01, max_value=1.0), st.integers(min_value=0, max_value=50))
def test_every_value_in_range_is_accepted(target_util: float, cold_workers: int) -> None:
    params = EndpointParams.parse(
        {"target_util": target_util, "cold_workers": cold_workers, "max_workers": 50}
    )
    assert params.cold_workers == cold_workers
