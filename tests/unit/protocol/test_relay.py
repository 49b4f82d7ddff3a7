from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import ErrorBody, SSEParser
from protocol.relay import (
    HOP_BY_HOP_HEADERS,
    INCOMPLETE_STREAM_EVENT,
    EventFramer,
    is_redirect,
    relayed_headers,
)

# --- the stream's events -------------------------------------------------------------------


def test_events_come_out_whole() -> None:
    framer = EventFramer()
    assert framer.feed(b'data:{"a":') == b""
    assert framer.feed(b'1}\n\ndata:{"b":2}\n') == b'data:{"a":1}\n\n'
    assert framer.feed(b"\ndata: [DONE]\r\n\r\n") == b'data:{"b":2}\n\ndata: [DONE]\r\n\r\n'
    assert framer.events == 3
    assert framer.held == 0


def test_each_line_ending_ends_an_event() -> None:
    for blank_line in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        framer = EventFramer()
        assert framer.feed(b"data: 1" + blank_line + b"data: 2") == b"data: 1" + blank_line
        assert framer.events == 1


def test_a_chunk_of_whole_events_comes_back_as_it_is() -> None:
    framer = EventFramer()
    chunk = b"data: 1\n\ndata: 2\n\n"
    assert framer.feed(chunk) is chunk
    assert framer.events == 2


def test_an_unterminated_tail_is_left_for_the_end() -> None:
    framer = EventFramer()
    assert framer.feed(b"data:1\n\ndata:2") == b"data:1\n\n"
    assert framer.mid_event
    assert framer.held == len(b"data:2")


def test_a_piece_without_a_boundary_is_not_held_past_the_bound() -> None:
    framer = EventFramer(max_event_bytes=16)
    assert framer.feed(b"x" * 10) == b""
    assert framer.feed(b"y" * 10) == b"x" * 10 + b"y" * 7  # all but what may begin "\r\n\r"
    assert framer.held == 3
    assert framer.feed(b"\n\n") == b"yyy\n\n"
    assert framer.events == 1
    assert not framer.mid_event


def test_a_blank_line_at_the_bound_is_still_seen() -> None:
    framer = EventFramer(max_event_bytes=8)
    assert framer.feed(b"data: 123456\r\n\r") == b"data: 123456"
    assert framer.feed(b"\ndata: 2\r\n\r\n") == b"\r\n\r\ndata: 2\r\n\r\n"
    assert framer.events == 2


def test_whitespace_after_the_last_event_is_not_an_event() -> None:
    framer = EventFramer()
    assert framer.feed(b"data: 1\n\n \r") == b"data: 1\n\n"
    assert framer.held == 2
    assert not framer.mid_event


def test_a_break_between_events_ends_the_stream_with_the_error_event_alone() -> None:
    framer = EventFramer()
    framer.feed(b"data: 1\n\ndata: 2")
    assert framer.interrupted() == INCOMPLETE_STREAM_EVENT  # the half event is never sent
    assert framer.held == 0


def test_a_break_inside_a_split_event_ends_that_event_first() -> None:
    framer = EventFramer(max_event_bytes=8)
    sent = framer.feed(b"data: 1234567890")
    ending = framer.interrupted()
    assert ending == b"\n\n" + INCOMPLETE_STREAM_EVENT
    events = SSEParser().feed(sent + ending)
    assert events[-1].json() == {
        "error": "Incomplete generation stream",
        "error_type": "incomplete_generation_stream",
    }


def test_the_error_event_is_tgis_own() -> None:
    [event] = SSEParser().feed(INCOMPLETE_STREAM_EVENT)
    error = ErrorBody.model_validate(event.json())
    assert (error.error, error.error_type) == (
        "Incomplete generation stream",
        "incomplete_generation_stream",
    )


line_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12)
event_lines = st.lists(
    st.one_of(
        line_text.map(lambda text: f"data: {text}"),
        line_text.map(lambda text: f"data:{text}"),
        line_text.map(lambda text: f": {text}"),
        st.just("event: token"),
    ),
    min_size=1,
    max_size=4,
)


@st.composite
def event_streams(draw: st.DrawFn) -> list[bytes]:
    """A valid stream's events, each ending with a blank line in the stream's one line ending."""
    line_end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    events = draw(st.lists(event_lines, max_size=8))
    return [("".join(line + line_end for line in lines) + line_end).encode() for lines in events]


def pieces(stream: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({min(cut, len(stream)) for cut in cuts}), len(stream)]
    return [stream[start:end] for start, end in itertools.pairwise(bounds)]


@given(events=event_streams(), cuts=st.lists(st.integers(min_value=0, max_value=600)))
def test_any_split_of_a_stream_gives_the_same_events_in_order(
    events: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(events)
    bound = max(len(event) for event in [b"1234", *events])  # the longest event fits
    framer = EventFramer(max_event_bytes=bound)
    event_ends = {len(b"".join(events[: i + 1])) for i in range(len(events))}
    sent = b""
    for piece in pieces(stream, cuts):
        out = framer.feed(piece)
        sent += out
        if out:  # each write ends where an event ends: none is ever cut in half
            assert len(sent) in event_ends
        assert framer.held <= bound
    assert sent == stream
    assert framer.events == len(events)
    assert not framer.mid_event
    assert framer.held == 0
    expected = SSEParser().feed(stream)
    assert SSEParser().feed(sent) == expected


@given(
    events=event_streams(),
    cuts=st.lists(st.integers(min_value=0, max_value=600)),
    bound=st.integers(min_value=4, max_value=24),
)
def test_long_events_pass_in_pieces_and_nothing_is_held_past_the_bound(
    events: list[bytes], cuts: list[int], bound: int
) -> None:
    stream = b"".join(events)
    framer = EventFramer(max_event_bytes=bound)
    sent = b""
    for piece in pieces(stream, cuts):
        sent += framer.feed(piece)
        assert framer.held <= bound
    assert stream.startswith(sent)
    assert len(stream) - len(sent) == framer.held  # the rest, and only it, is held
    assert framer.events == len(events)  # no blank line is missed at a forced cut


@given(
    events=event_streams(),
    cuts=st.lists(st.integers(min_value=0, max_value=600), min_size=1),
    bound=st.integers(min_value=4, max_value=64),
    stop=st.integers(min_value=0),
)
def test_a_stream_broken_off_anywhere_ends_with_one_well_formed_error_event(
    events: list[bytes], cuts: list[int], bound: int, stop: int
) -> None:
    stream = b"".join(events)
    framer = EventFramer(max_event_bytes=bound)
    received = pieces(stream, cuts)
    sent = b"".join(framer.feed(piece) for piece in received[: stop % len(received)])
    parsed = SSEParser().feed(sent + framer.interrupted())
    assert parsed[-1].json() == {
        "error": "Incomplete generation stream",
        "error_type": "incomplete_generation_stream",
    }


# --- the headers ---------------------------------------------------------------------------


def test_hop_by_hop_and_recomputed_headers_stay_behind_whatever_their_case() -> None:
    headers = [
        ("Content-Type", "text/event-stream"),
        ("Transfer-Encoding", "chunked"),
        ("CONNECTION", "keep-alive"),
        ("Keep-Alive", "timeout=5"),
        ("content-length", "12"),
        ("Date", "Mon, 01 Dec 2026 05:00:00 GMT"),
        ("Server", "uvicorn"),
        ("Trailer", "x-checksum"),
        ("x-generated-tokens", "7"),
    ]
    assert relayed_headers(headers) == [
        ("Content-Type", "text/event-stream"),
        ("x-generated-tokens", "7"),
    ]


def test_what_describes_the_answer_is_kept_in_order_with_repeats() -> None:
    headers = [
        ("Content-Encoding", "gzip"),  # the body is relayed undecoded: it must say so still
        ("Set-Cookie", "a=1"),
        ("x-compute-type", "gpu"),
        ("Set-Cookie", "b=2"),
    ]
    assert relayed_headers(headers) == headers


def test_names_the_connection_header_lists_are_hop_by_hop_too() -> None:
    headers = [("Connection", "close, X-Hop"), ("x-hop", "1"), ("x-end", "2")]
    assert relayed_headers(headers) == [("x-end", "2")]


def test_the_set_is_lowercase() -> None:
    assert all(name == name.lower() for name in HOP_BY_HOP_HEADERS)


@pytest.mark.parametrize("status", [300, 301, 302, 303, 307, 308, 399])
def test_every_3xx_is_a_redirect(status: int) -> None:
    assert is_redirect(status)


@pytest.mark.parametrize("status", [200, 204, 299, 400, 429, 502])
def test_other_statuses_are_not(status: int) -> None:
    assert not is_redirect(status)
