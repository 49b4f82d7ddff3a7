"""The shard's wire: frames survive any split of the byte stream; events survive encoding."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tgi_server.engine.shard.wire import (
    HEADER,
    MAX_FRAME,
    FrameReader,
    decode_events,
    encode_events,
    frame,
    request_for_shard,
)
from tgi_server.errors import GenerationError
from tgi_server.generation.events import (
    Completion,
    EngineEvent,
    FailureEvent,
    GeneratedToken,
    TokenEvent,
)
from tgi_server.generation.grammar import CompiledGrammar
from tgi_server.validation import SamplingParams, ValidatedRequest

tokens = st.builds(
    GeneratedToken,
    id=st.integers(0, 1 << 20),
    text=st.text(max_size=8),
    logprob=st.floats(allow_nan=False, max_value=0.0),
    special=st.booleans(),
)
completions = st.builds(
    Completion,
    generated_text=st.text(max_size=8),
    finish_reason=st.sampled_from(["length", "eos_token", "stop_sequence"]),
    generated_tokens=st.integers(1, 100),
    seed=st.none() | st.integers(0, 1 << 63),
    input_length=st.integers(1, 100),
)
token_events = st.builds(
    TokenEvent,
    index=st.integers(1, 1000),
    token=tokens,
    top_tokens=st.tuples() | st.tuples(tokens, tokens),
    completion=st.none() | completions,
)
failures = st.text(max_size=20).map(lambda m: FailureEvent(GenerationError(m)))
events = st.lists(st.tuples(st.integers(1, 1 << 40), token_events | failures), max_size=40)


def same(a: EngineEvent, b: EngineEvent) -> bool:
    if isinstance(a, FailureEvent) and isinstance(b, FailureEvent):
        return type(a.error) is type(b.error) and a.error.message == b.error.message
    return a == b


@given(events)
def test_events_come_back_as_they_went(sent: list[tuple[int, EngineEvent]]) -> None:
    wire = pickle.loads(pickle.dumps(encode_events(sent)))
    received = decode_events(wire)
    assert [job for job, _ in received] == [job for job, _ in sent]
    assert all(same(a, b) for (_, a), (_, b) in zip(received, sent, strict=True))


def test_a_plain_token_event_goes_as_a_flat_tuple() -> None:
    event = TokenEvent(3, GeneratedToken(42, " the", -0.25, False))
    assert encode_events([(7, event)]) == [(7, 3, 42, " the", -0.25, False)]


messages = st.lists(
    st.tuples(st.sampled_from(["submit", "cancel", "step"]), st.integers(), st.text(max_size=50)),
    max_size=10,
)


@given(messages, st.lists(st.integers(1, 64), max_size=30))
def test_frames_survive_any_split_of_the_stream(
    sent: list[tuple[Any, ...]], cuts: list[int]
) -> None:
    stream = b"".join(frame(message) for message in sent)
    reader, received, start = FrameReader(), [], 0
    for size in [*cuts, len(stream)]:
        received += reader.feed(stream[start : start + size])
        start += size
    assert received == sent


def test_a_frame_longer_than_any_message_is_a_corrupt_stream() -> None:
    with pytest.raises(ValueError, match="corrupt"):
        FrameReader().feed(HEADER.pack(MAX_FRAME + 1) + b"x")


def test_a_compiled_grammar_goes_as_its_regex() -> None:
    plain = ValidatedRequest("Hi", (1, 2), SamplingParams(), 4)
    assert request_for_shard(plain) is plain
    constrained = ValidatedRequest(
        "Hi", (1, 2), SamplingParams(), 4, grammar=CompiledGrammar(object(), "[0-9]+", 2)
    )
    assert request_for_shard(constrained).grammar == "[0-9]+"
    assert request_for_shard(constrained).input_ids == (1, 2)
