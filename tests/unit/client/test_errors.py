"""The mapping from an HTTP answer to the SDK's exception hierarchy."""

from __future__ import annotations

import json
from typing import Literal

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from client import errors
from client._http import _translate_errors

Peer = Literal["router", "worker"]


def _body(error: str, error_type: str) -> bytes:
    return json.dumps({"error": error, "error_type": error_type}).encode()


@pytest.mark.parametrize(
    ("status", "origin", "expected"),
    [
        (401, "router", errors.AuthenticationError),
        (403, "router", errors.AuthenticationError),
        (404, "router", errors.EndpointNotFound),
        (401, "worker", errors.TicketRejected),
        (403, "worker", errors.TicketRejected),
        (404, "worker", errors.ProtocolError),
        (400, "worker", errors.ValidationError),
        (413, "worker", errors.ValidationError),
        (422, "router", errors.ValidationError),
        (429, "worker", errors.OverloadedError),
        (503, "router", errors.OverloadedError),
        (500, "worker", errors.ServerError),
        (502, "worker", errors.ServerError),
        (418, "router", errors.ProtocolError),
    ],
)
def test_status_and_origin_choose_the_exception(
    status: int, origin: Peer, expected: type[errors.TGISError]
) -> None:
    error = errors.error_from_response(status, _body("what went wrong", "some_type"), origin=origin)
    assert type(error) is expected
    assert error.status == status
    assert error.origin == origin
    assert error.error_type == "some_type"
    assert "what went wrong" in error.message


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (404, "endpoint_not_found", errors.EndpointNotFound),
        (404, None, errors.EndpointNotFound),  # a body that is not ours (Vast's router)
        (404, "not_found", errors.ProtocolError),  # no such route: that URL is not a router's
        (404, "http", errors.ProtocolError),  # the same, from a router before the shared catalogue
    ],
)
def test_a_routers_404_is_an_unknown_endpoint_unless_the_url_itself_is_unknown(
    status: int, error_type: str | None, expected: type[errors.TGISError]
) -> None:
    body = _body("not here", error_type) if error_type else b"Not Found"
    assert type(errors.error_from_response(status, body, origin="router")) is expected


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            413,
            _body("request body is over the 1024-byte limit", "too_large"),
            errors.ValidationError,
        ),
        (422, _body("`payload` must be a JSON object", "invalid_payload"), errors.ValidationError),
        (422, b'{"error": "invalid JSON"}', errors.ValidationError),  # Vast's PyWorker
        (401, b"", errors.TicketRejected),  # Vast's PyWorker, a bad signature
        (429, b"", errors.OverloadedError),
        (405, _body("Method Not Allowed", "http"), errors.ProtocolError),
    ],
)
def test_answers_of_older_workers_and_of_vasts_pyworker_map_as_ours_do(
    status: int, body: bytes, expected: type[errors.TGISError]
) -> None:
    assert type(errors.error_from_response(status, body, origin="worker")) is expected


def test_the_json_error_body_becomes_message_and_type() -> None:
    error = errors.error_from_response(
        401, _body("invalid API key", "authentication"), origin="router"
    )
    assert error.message == "invalid API key"
    assert str(error) == "router 401 (authentication): invalid API key"


def test_overloaded_carries_retry_after_seconds() -> None:
    error = errors.error_from_response(
        429, _body("busy", "overloaded"), origin="worker", retry_after="3"
    )
    assert isinstance(error, errors.OverloadedError)
    assert error.retry_after == 3.0


def test_a_stream_error_does_not_show_its_200_status() -> None:
    error = errors.StreamError("oom", origin="worker", status=200, error_type="generation")
    assert str(error) == "worker (generation): oom"


def test_a_non_json_body_becomes_the_message() -> None:
    error = errors.error_from_response(502, b"<html>Bad   gateway</html>\n", origin="worker")
    assert isinstance(error, errors.ServerError)
    assert error.message == "<html>Bad gateway</html>"
    assert error.error_type is None


def test_an_empty_body_still_gives_a_message() -> None:
    assert (
        errors.error_from_response(500, b"", origin="worker").message
        == "HTTP 500 with an empty body"
    )


def test_a_json_body_of_another_shape_is_kept_as_text() -> None:
    error = errors.error_from_response(422, b'{"auth_data": "field missing"}', origin="worker")
    assert error.message == '{"auth_data": "field missing"}'


def test_a_huge_body_is_truncated() -> None:
    error = errors.error_from_response(500, b"x" * 10_000, origin="worker")
    assert len(error.message) == 500
    assert error.message.endswith("…")


@given(
    status=st.integers(min_value=100, max_value=599).filter(lambda s: s != 200),
    body=st.one_of(st.binary(max_size=300), st.text(max_size=300)),
    origin=st.sampled_from(["router", "worker"]),
    retry_after=st.one_of(st.none(), st.text(max_size=10)),
)
def test_any_answer_maps_to_a_typed_error(
    status: int, body: bytes | str, origin: Peer, retry_after: str | None
) -> None:
    error = errors.error_from_response(status, body, origin=origin, retry_after=retry_after)
    assert isinstance(error, errors.TGISError)
    assert error.status == status
    assert error.message
    assert str(error).startswith(origin)
    assert str(status) in str(error)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_any_json_body_maps_to_a_typed_error(value: object) -> None:
    body = json.dumps(value)
    error = errors.error_from_response(400, body, origin="worker")
    assert isinstance(error, errors.ValidationError)
    assert error.message


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        (None, None),
        ("-1", None),
        ("nan", None),
        ("inf", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_retry_after_accepts_only_delta_seconds(header: str | None, seconds: float | None) -> None:
    assert errors.parse_retry_after(header) == seconds


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (aiohttp.ConnectionTimeoutError("connect"), errors.ConnectionFailed),
        (aiohttp.ClientConnectionError("refused"), errors.ConnectionFailed),
        (TimeoutError(), errors.RequestTimeout),
        (aiohttp.ClientPayloadError("cut"), errors.ConnectionFailed),
    ],
)
def test_transport_failures_become_typed_errors(
    raised: Exception, expected: type[errors.TGISError]
) -> None:
    """A connect timeout sent nothing, so it is a connection failure (retried); a timeout
    after the request went out is not."""
    with pytest.raises(expected) as caught, _translate_errors("worker", "http://w"):
        raise raised
    assert caught.value.origin == "worker"
    assert "http://w" in caught.value.message


def test_a_body_nested_too_deep_to_parse_is_kept_as_text() -> None:
    # json.loads raises RecursionError, not ValueError, on nesting this deep: it must not escape.
    body = b"[" * 100_000
    error = errors.error_from_response(502, body, origin="worker")
    assert isinstance(error, errors.ServerError)
    assert error.message.startswith("[[[")


def test_a_200_answer_nested_too_deep_to_parse_is_a_protocol_error() -> None:
    from client._async import _json_body

    with pytest.raises(errors.ProtocolError, match="not JSON"):
        _json_body(b"[" * 100_000, "router")
