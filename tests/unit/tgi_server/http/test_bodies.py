"""Reading request bodies: content type, JSON syntax, field types and integer ranges."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import ErrorBody
from tgi_server.errors import (
    BackendError,
    InvalidBodyError,
    MalformedBodyError,
    UnsupportedMediaTypeError,
)
from tgi_server.http.bodies import is_json_content_type, parse_generate_request

JSON_TYPE = "application/json"


def error_of(body: bytes, content_type: str = JSON_TYPE) -> BackendError:
    with pytest.raises(BackendError) as caught:
        parse_generate_request(content_type, body)
    return caught.value


def test_a_valid_body_parses_with_tgis_defaults() -> None:
    request = parse_generate_request(JSON_TYPE, b'{"inputs": "hi", "stream": true}')
    assert request.inputs == "hi"
    assert request.parameters.do_sample is True  # `parameters` omitted
    explicit = parse_generate_request(JSON_TYPE, b'{"inputs": "hi", "parameters": {}}')
    assert explicit.parameters.do_sample is False


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/x+json"]
)
def test_json_content_types_are_accepted(content_type: str) -> None:
    assert is_json_content_type(content_type)


@pytest.mark.parametrize("content_type", ["", "text/plain", "application/x-www-form-urlencoded"])
def test_other_content_types_get_415(content_type: str) -> None:
    error = error_of(b'{"inputs": "hi"}', content_type)
    assert isinstance(error, UnsupportedMediaTypeError)
    assert error.status == 415
    assert error.body() == ErrorBody(
        error="Expected request with `Content-Type: application/json`",
        error_type="unsupported_media_type",
    )


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"not json", b'{"inputs": NaN}', b'{"inputs": "a", "x": Infinity}', b"\xff\xfe"],
)
def test_malformed_json_gets_400(body: bytes) -> None:
    error = error_of(body)
    assert isinstance(error, MalformedBodyError)
    assert error.status == 400
    assert error.message.startswith("Failed to parse the request body as JSON: ")


def test_absurdly_deep_json_is_a_400_not_a_crash() -> None:
    error = error_of(b"[" * 100_000 + b"]" * 100_000)
    assert error.status == 400


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, "inputs: Field required"),
        ({"inputs": ["a"]}, "inputs: Input should be a valid string"),
        ({"inputs": "a", "parameters": None}, "parameters: Input should be a valid dictionary"),
        ({"inputs": "a", "parameters": {"stop": None}}, "parameters.stop: Input should be a valid"),
        ({"inputs": "a", "parameters": {"max_new_tokens": 20.0}}, "parameters.max_new_tokens"),
        ({"inputs": "a", "parameters": {"details": 1}}, "parameters.details"),
        ({"inputs": "a", "parameters": {"seed": -1}}, "parameters.seed"),
        (
            {"inputs": "a", "parameters": {"seed": 2**64}},
            f"parameters.seed: invalid value: integer `{2**64}`, expected u64",
        ),
        (
            {"inputs": "a", "parameters": {"max_new_tokens": 2**32}},
            f"parameters.max_new_tokens: invalid value: integer `{2**32}`, expected u32",
        ),
        ({"inputs": "a", "parameters": {"top_k": -(2**31) - 1}}, "expected i32"),
        ([1, 2], "Input should be a valid dictionary"),
    ],
)
def test_wrong_types_get_422(body: object, expected: str) -> None:
    error = error_of(json.dumps(body).encode())
    assert isinstance(error, InvalidBodyError)
    assert error.status == 422
    assert error.error_type == "validation"
    assert error.message.startswith("Failed to deserialize the JSON body into the target type: ")
    assert expected in error.message


def test_floats_accept_json_integers_and_unknown_fields_are_ignored() -> None:
    body = b'{"inputs": "a", "parameters": {"temperature": 1, "unknown": [1]}, "extra": {}}'
    assert parse_generate_request(JSON_TYPE, body).parameters.temperature == 1.0


def outcome(body: bytes) -> int:
    """200 when the body parses, else the status of the error it raises (nothing else escapes)."""
    try:
        parse_generate_request(JSON_TYPE, body)
    except BackendError as exc:
        return exc.status
    return 200


@given(st.binary(max_size=200))
def test_no_byte_string_escapes_the_error_hierarchy(body: bytes) -> None:
    assert outcome(body) in (200, 400, 422)


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
        max_leaves=20,
    )
)
def test_no_json_document_escapes_the_error_hierarchy(document: object) -> None:
    body = json.dumps({"inputs": "x", "parameters": document}).encode()
    assert outcome(body) in (200, 422)
