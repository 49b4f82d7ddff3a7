"""Generate payloads and their cost, `/generate` bodies, and decoding `/generate_stream` bytes."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.errors import IncompleteStream, ProtocolError, StreamError, ValidationError
from client.generation import (
    GenerateOptions,
    StreamDecoder,
    build_generate_call,
    parse_generate_response,
)
from protocol.sse import encode_json_event
from protocol.tgi import StreamResponse


def token_event(index: int, text: str, *, final: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "index": index,
        "token": {"id": index, "text": text, "logprob": -0.5, "special": False},
        "top_tokens": None,
        "generated_text": final,
        "details": None,
    }
    if final is not None:
        event["details"] = {"finish_reason": "length", "generated_tokens": index, "seed": None}
    return event


WORDS = ["Hello", " wörld", " 🙂", "\n", " end"]
STREAM_BYTES = b"".join(
    encode_json_event(token_event(i + 1, w, final="".join(WORDS) if i == 4 else None))
    for i, w in enumerate(WORDS)
)


def test_the_payload_carries_max_new_tokens_and_only_the_options_given() -> None:
    call = build_generate_call("Hi", 20, GenerateOptions(temperature=0.5, seed=3))
    assert call.payload == {
        "inputs": "Hi",
        "parameters": {"max_new_tokens": 20, "temperature": 0.5, "seed": 3},
    }


def test_the_cost_is_max_new_tokens() -> None:
    assert build_generate_call("Hi", 37, GenerateOptions()).cost == 37


@given(st.integers(min_value=1, max_value=100_000))
def test_the_cost_always_equals_the_payload_workload(max_new_tokens: int) -> None:
    call = build_generate_call("x", max_new_tokens, GenerateOptions(details=True))
    assert call.cost == call.payload["parameters"]["max_new_tokens"] == max_new_tokens


@pytest.mark.parametrize("max_new_tokens", [0, -1, True, 2.5])
def test_max_new_tokens_must_be_a_positive_integer(max_new_tokens: Any) -> None:
    with pytest.raises(ValidationError, match="max_new_tokens"):
        build_generate_call("Hi", max_new_tokens, GenerateOptions())


def test_a_badly_typed_option_is_a_validation_error_naming_it() -> None:
    options: Any = {"seed": "three"}
    with pytest.raises(ValidationError, match=r"parameters\.seed") as caught:
        build_generate_call("Hi", 5, options)
    assert caught.value.origin == "client"


def test_an_unknown_option_is_a_type_error() -> None:
    options: Any = {"temprature": 0.5}
    with pytest.raises(TypeError, match="temprature"):
        build_generate_call("Hi", 5, options)


def test_a_generate_body_parses_to_a_response() -> None:
    body = json.dumps(
        {
            "generated_text": "Hello",
            "details": {"finish_reason": "eos_token", "generated_tokens": 1, "seed": None},
        }
    ).encode()
    response = parse_generate_response(body)
    assert response.generated_text == "Hello"
    assert response.details is not None
    assert response.details.finish_reason == "eos_token"


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"generated_text": 5}'])
def test_a_malformed_generate_body_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_generate_response(body)


def decode_all(chunks: list[bytes]) -> list[StreamResponse]:
    decoder = StreamDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    decoder.finish()
    return events


def test_a_whole_stream_decodes_to_its_events() -> None:
    events = decode_all([STREAM_BYTES])
    assert [event.token.text for event in events] == WORDS
    assert events[-1].generated_text == "".join(WORDS)


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM_BYTES)), max_size=40))
def test_a_stream_split_anywhere_decodes_the_same(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM_BYTES)]
    chunks = [STREAM_BYTES[start:end] for start, end in pairwise(bounds)]
    assert decode_all(chunks) == decode_all([STREAM_BYTES])


def test_events_after_the_final_one_are_ignored() -> None:
    decoder = StreamDecoder()
    extra = encode_json_event(token_event(9, "late"))
    events = list(decoder.feed(STREAM_BYTES + extra))
    assert len(events) == len(WORDS)
    assert decoder.finished


def test_an_error_event_raises_a_stream_error_after_the_events_before_it() -> None:
    error = encode_json_event({"error": "CUDA out of memory", "error_type": "generation"})
    events = StreamDecoder().feed(encode_json_event(token_event(1, "Hi")) + error)
    assert next(events).token.text == "Hi"
    with pytest.raises(StreamError) as caught:
        next(events)
    assert caught.value.message == "CUDA out of memory"
    assert caught.value.error_type == "generation"
    assert not isinstance(caught.value, IncompleteStream)


def test_a_stream_without_its_final_event_is_incomplete() -> None:
    decoder = StreamDecoder()
    assert len(list(decoder.feed(encode_json_event(token_event(1, "Hi"))))) == 1
    with pytest.raises(IncompleteStream):
        decoder.finish()


@pytest.mark.parametrize(
    "raw",
    [b"data: not json\n\n", b'data: {"index": 1}\n\n', b"data: [1, 2]\n\n"],
)
def test_a_malformed_event_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError, match="malformed token stream"):
        list(StreamDecoder().feed(raw))
