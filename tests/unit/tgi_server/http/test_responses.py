"""Each request's outcome is counted once: failed by error type, dropped, or a generation error.

`run_generate` and `streaming.run_stream` both count through `recording_outcome`; the routes'
tests (tests/integration/tgi_server) see the same counts through `/metrics`.
"""

from __future__ import annotations

import asyncio

import pytest

from tgi_server.errors import GenerationError, OverloadedError, ValidationError
from tgi_server.http.responses import recording_outcome
from tgi_server.metrics import BackendMetrics

DROPPED = (ConnectionResetError, asyncio.CancelledError)


def counts(metrics: BackendMetrics) -> dict[str, float]:
    """Requests received, and failures by `err`, as `/metrics` would show them."""
    found = {"received": metrics.registry.get_sample_value("tgi_request_count_total") or 0.0}
    for family in metrics.registry.collect():
        if family.name == "tgi_request_failure":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    found[sample.labels["err"]] = sample.value
    return found


@pytest.mark.parametrize(
    ("raised", "err"),
    [
        (ValidationError("no"), "validation"),
        (OverloadedError(), "overloaded"),
        (ConnectionResetError("gone"), "dropped"),
        (asyncio.CancelledError(), "dropped"),
    ],
)
def test_a_failure_is_counted_under_its_error_type_and_raised_as_it_is(
    raised: BaseException, err: str
) -> None:
    metrics = BackendMetrics(max_input_tokens=8, max_total_tokens=16)
    with (
        pytest.raises(type(raised)) as caught,
        recording_outcome(metrics, dropped=DROPPED, failure_log="a test request failed"),
    ):
        raise raised
    assert caught.value is raised
    assert counts(metrics) == {"received": 1.0, err: 1.0}


def test_an_unexpected_error_is_logged_and_raised_as_a_generation_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = BackendMetrics(max_input_tokens=8, max_total_tokens=16)
    with (
        pytest.raises(GenerationError, match="Server error: boom") as caught,
        recording_outcome(metrics, dropped=DROPPED, failure_log="a test request failed"),
    ):
        raise RuntimeError("boom")
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert counts(metrics) == {"received": 1.0, "generation": 1.0}
    assert "a test request failed" in caplog.text


def test_an_exception_not_listed_as_dropped_is_not_counted_as_dropped() -> None:
    metrics = BackendMetrics(max_input_tokens=8, max_total_tokens=16)
    with (
        pytest.raises(GenerationError),
        recording_outcome(metrics, dropped=(asyncio.CancelledError,), failure_log="failed"),
    ):
        raise ConnectionResetError("not how this route sees a client leave")
    assert counts(metrics) == {"received": 1.0, "generation": 1.0}


def test_a_block_that_ends_well_counts_only_the_arrival() -> None:
    metrics = BackendMetrics(max_input_tokens=8, max_total_tokens=16)
    with recording_outcome(metrics, dropped=DROPPED, failure_log="failed"):
        pass
    assert counts(metrics) == {"received": 1.0}
