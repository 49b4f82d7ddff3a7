from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.gateway.policy import EventFramer, WorkloadError, request_cost


@pytest.mark.parametrize(
    ("path", "payload", "cost"),
    [
        ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 20}}, 20),
        ("/generate_stream", {"inputs": "x", "parameters": {}}, 512),
        ("/", {"inputs": "x", "parameters": {"max_new_tokens": 0}}, 1),
        ("/v1/chat/completions", {"messages": [], "max_tokens": 9}, 9),
        ("/v1/chat/completions", {"messages": [], "max_completion_tokens": 4}, 4),
        ("/v1/completions", {"prompt": ["a", "b", "c"], "max_tokens": 2}, 6),
        ("/v1/completions", {"prompt": "a"}, 512),
    ],
)
def test_the_cost_is_what_the_worker_will_count(
    path: str, payload: dict[str, object], cost: float
) -> None:
    assert request_cost(path, payload, 512) == cost


@pytest.mark.parametrize(
    "payload",
    [
        {"parameters": {"max_new_tokens": -1}},
        {"parameters": {"max_new_tokens": 1.5}},
        {"parameters": {"max_new_tokens": True}},
        {"parameters": "many"},
        {"parameters": {"max_new_tokens": 10**400}},  # no float holds it
        {"parameters": {"max_new_tokens": 10**12}},  # over MAX_COST
    ],
)
def test_a_malformed_count_is_refused(payload: dict[str, object]) -> None:
    with pytest.raises(WorkloadError):
        request_cost("/generate", payload, 512)


def test_events_come_out_whole() -> None:
    framer = EventFramer()
    assert framer.feed(b'data:{"a":') == b""
    assert framer.feed(b'1}\n\ndata:{"b":2}\n') == b'data:{"a":1}\n\n'
    assert framer.feed(b"\ndata: [DONE]\r\n\r\n") == b'data:{"b":2}\n\ndata: [DONE]\r\n\r\n'
    assert framer.rest() == b""


def test_an_unterminated_tail_is_left_for_the_end() -> None:
    framer = EventFramer()
    assert framer.feed(b"data:1\n\ndata:2") == b"data:1\n\n"
    assert framer.rest() == b"data:2"


def test_a_piece_without_a_boundary_is_not_held_forever() -> None:
    framer = EventFramer(max_event_bytes=16)
    assert framer.feed(b"x" * 10) == b""
    assert framer.feed(b"y" * 10) == b"x" * 10 + b"y" * 10


event_bodies = st.lists(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20),
    max_size=8,
)


@given(bodies=event_bodies, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10))
def test_any_split_of_a_stream_gives_the_same_events(bodies: list[str], cuts: list[int]) -> None:
    events = [f"data:{body}\n\n".encode() for body in bodies]
    stream = b"".join(events)
    framer = EventFramer()
    pieces: list[bytes] = []
    start = 0
    for cut in [*sorted({min(cut, len(stream)) for cut in cuts}), len(stream)]:
        pieces.append(framer.feed(stream[start:cut]))
        start = cut
    assert b"".join(pieces) == stream
    ends = {len(b"".join(events[: i + 1])) for i in range(len(events))} | {0}
    offset = 0
    for piece in pieces:  # every piece ends where an event ends: none is ever cut in half
        offset += len(piece)
        assert offset in ends
    assert framer.rest() == b""
