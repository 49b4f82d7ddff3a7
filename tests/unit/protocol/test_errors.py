"""The error contract, pure: what each kind of error becomes on the wire."""

from __future__ import annotations

import json

import pytest

from protocol.errors import (
    ERROR_TYPES,
    INTERNAL_MESSAGE,
    ErrorBody,
    ErrorType,
    ServiceError,
    error_answer,
    framework_error,
)


class Gone(ServiceError):
    error_type = ErrorType.ENDPOINT_NOT_FOUND


class Busy(ServiceError):
    error_type = ErrorType.OVERLOADED


def frame(status: int, reason: str = "", headers: dict[str, str] | None = None) -> ServiceError:
    return framework_error(
        status, reason, headers or {}, method="PUT", path="/route/", body_limit=1024
    )


def test_every_type_has_a_status_and_only_stream_events_have_none() -> None:
    assert set(ERROR_TYPES) == set(ErrorType)
    for kind in ERROR_TYPES.values():
        assert kind.statuses or kind.in_stream
        assert all(400 <= status <= 599 for status in kind.statuses)


def test_an_error_of_ours_answers_its_catalogue_status_type_and_message() -> None:
    status, headers, body = error_answer(Gone("no endpoint named 'x'"))
    assert status == 404
    assert headers == {"Content-Type": "application/json"}
    assert body == b'{"error":"no endpoint named \'x\'","error_type":"endpoint_not_found"}'


def test_the_body_is_written_as_tgi_writes_it() -> None:
    """Compact, keys in order, raw UTF-8: the backend's bodies stay TGI's to the byte."""
    _, _, body = error_answer(Busy("modèle occupé"))
    assert body == '{"error":"modèle occupé","error_type":"overloaded"}'.encode()


def test_text_without_a_utf8_form_is_escaped_rather_than_failing() -> None:
    _, _, body = error_answer(ServiceError("bad input \ud800"))
    assert json.loads(body) == {"error": "bad input \ud800", "error_type": "internal"}


@pytest.mark.parametrize(("retry_after_s", "header"), [(0.2, "1"), (2.6, "3"), (30.0, "30")])
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(
    retry_after_s: float, header: str
) -> None:
    _, headers, _ = error_answer(Busy("too many waiting", retry_after_s=retry_after_s))
    assert headers["Retry-After"] == header


def test_the_base_error_is_an_internal_error() -> None:
    status, _, body = error_answer(ServiceError("something broke"))
    assert status == 500
    assert ErrorBody.model_validate_json(body).error_type == "internal"


def test_an_unexpected_exception_is_a_500_that_says_nothing_of_it() -> None:
    status, headers, body = error_answer(KeyError("secret detail"))
    assert status == 500
    assert "Retry-After" not in headers
    assert json.loads(body) == {"error": INTERNAL_MESSAGE, "error_type": "internal"}


def test_the_frameworks_404_names_the_path() -> None:
    error = frame(404, "Not Found")
    assert (error.status, error.error_type) == (404, "not_found")
    assert "/route/" in error.message


def test_the_frameworks_405_keeps_allow_and_names_the_methods() -> None:
    status, headers, body = error_answer(frame(405, "Method Not Allowed", {"Allow": "GET,POST"}))
    assert status == 405
    assert headers == {"Content-Type": "application/json", "Allow": "GET,POST"}
    answer = ErrorBody.model_validate_json(body)
    assert answer.error_type == "method_not_allowed"
    assert "PUT" in answer.error
    assert "GET, POST" in answer.error


def test_the_frameworks_413_names_the_limit() -> None:
    error = frame(413, "Request Entity Too Large")
    assert error.body() == ErrorBody(
        error="request body is over the 1024-byte limit", error_type="payload_too_large"
    )


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "bad_request"),
        (415, "unsupported_media_type"),
        (417, "bad_request"),
        (501, "internal"),
    ],
)
def test_other_framework_errors_keep_their_status_and_reason(status: int, error_type: str) -> None:
    error = frame(status, "Some Reason", {"Content-Type": "text/plain"})
    assert (error.status, error.error_type, error.message) == (status, error_type, "Some Reason")
    assert error.headers() == {}
