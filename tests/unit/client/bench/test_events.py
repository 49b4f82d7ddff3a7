"""Token events off TGI and OpenAI streams, split across reads at any point."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.bench.events import StreamFailure, TokenTally


def tgi_stream(count: int) -> bytes:
    events = []
    for i in range(1, count + 1):
        final = i == count
        data = {
            "index": i,
            "token": {"id": i, "text": "x", "logprob": 0.0, "special": i == 1},
            "generated_text": "x" * count if final else None,
            "details": {"generated_tokens": count + 3} if final else None,
        }
        events.append(b"data:" + json.dumps(data).encode() + b"\n\n")
    return b": keep-alive\n\n" + b"".join(events)


@given(st.integers(1, 20), st.lists(st.integers(1, 400), max_size=30))
def test_tgi_events_are_counted_however_the_bytes_are_split(count: int, cuts: list[int]) -> None:
    data = tgi_stream(count)
    arrivals: list[float] = []
    tally = TokenTally("tgi", arrivals.append)
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    for n, (a, b) in enumerate(itertools.pairwise(points)):
        tally.feed(data[a:b], float(n))
    assert len(arrivals) == count  # special tokens count too
    assert arrivals == sorted(arrivals)
    assert tally.finished
    assert tally.server_tokens == count + 3


def test_openai_chunks_with_text_are_tokens_and_usage_is_the_count() -> None:
    arrivals: list[float] = []
    tally = TokenTally("openai", arrivals.append)
    chunks = [
        {"choices": [{"delta": {"role": "assistant"}}]},
        {"choices": [{"delta": {"content": "Hi"}}]},
        {"choices": [{"text": " there"}]},
        {"choices": [], "usage": {"completion_tokens": 7}},
    ]
    data = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    tally.feed(data + b"data: [DONE]\n\n", 1.5)
    assert arrivals == [1.5, 1.5]
    assert tally.server_tokens == 7
    assert tally.finished


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'data: {"error": "Model is overloaded"}\n\n', "Model is overloaded"),
        (b"data: not json\n\n", "not JSON"),
        (b"data: [1, 2]\n\n", "not a JSON object"),
    ],
)
def test_error_events_and_garbage_fail_the_request(data: bytes, message: str) -> None:
    with pytest.raises(StreamFailure, match=message):
        TokenTally("tgi", lambda _: None).feed(data, 0.0)


def test_a_stream_without_its_final_event_is_not_finished() -> None:
    tally = TokenTally("tgi", lambda _: None)
    tally.feed(tgi_stream(3).rsplit(b"data:", 1)[0], 0.0)
    assert not tally.finished
