from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from protocol import SSEError, SSEParser, encode_data_event, encode_json_event

# Text as it exists after decoding: no lone surrogates, and no line breaks inside one event.
TEXT_WITHOUT_LINE_BREAKS = st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n")

TGI_STREAM = (
    b'data: {"index":1,"token":{"id":5,"text":" Hi","logprob":-0.5,"special":false},'
    b'"generated_text":null,"details":null}\n\n'
    b":\n\n"
    b'data:{"index":2,"token":{"id":2,"text":"</s>","logprob":-0.1,"special":true},'
    b'"generated_text":" Hi","details":null}\n\n'
)


def test_encode_json_event_is_tgis_bytes() -> None:
    event = encode_json_event({"index": 1, "text": "é"})
    assert event == 'data: {"index":1,"text":"é"}\n\n'.encode()


def test_encode_refuses_line_breaks() -> None:
    with pytest.raises(ValueError, match="line breaks"):
        encode_data_event("a\nb")


def test_parser_reads_tgi_events_with_and_without_the_space() -> None:
    events = SSEParser().feed(TGI_STREAM)
    assert [event.json()["index"] for event in events] == [1, 2]
    assert events[1].json()["generated_text"] == " Hi"


def test_parser_ignores_comments_and_joins_multiline_data() -> None:
    events = SSEParser().feed(b": keep-alive\n\nevent: x\ndata: a\ndata: b\nid: 3\n\n")
    assert len(events) == 1
    assert (events[0].data, events[0].event, events[0].id) == ("a\nb", "x", "3")


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_parser_accepts_every_line_ending(newline: bytes) -> None:
    stream = b"data: one" + newline + newline + b"data: two" + newline + newline
    parser = SSEParser()
    events = parser.feed(stream) + parser.finish()
    assert [e.data for e in events] == ["one", "two"]


def test_a_crlf_split_between_chunks_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"\n\r") == []
    assert [e.data for e in parser.feed(b"\n")] == ["x"]


def test_an_event_without_its_blank_line_is_not_dispatched() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: half") == []
    assert parser.finish() == []


def test_a_line_over_the_bound_is_an_error() -> None:
    parser = SSEParser(max_line_bytes=16)
    with pytest.raises(SSEError):
        parser.feed(b"data: " + b"x" * 64)


@given(st.lists(st.integers(min_value=0, max_value=len(TGI_STREAM)), max_size=12))
def test_chunk_boundaries_do_not_change_the_events(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(TGI_STREAM)]
    parser = SSEParser()
    events = []
    for start, end in itertools.pairwise(bounds):
        events.extend(parser.feed(TGI_STREAM[start:end]))
    assert events == SSEParser().feed(TGI_STREAM)


@given(st.lists(st.text(alphabet=TEXT_WITHOUT_LINE_BREAKS, max_size=30)))
def test_encoded_events_parse_back(datas: list[str]) -> None:
    stream = b"".join(encode_data_event(data) for data in datas)
    assert [event.data for event in SSEParser().feed(stream)] == datas


@example("\ud800")
@given(st.text(st.characters(blacklist_categories=(), blacklist_characters="\r\n")))
def test_any_text_encodes_to_utf8_json_that_reads_back(text: str) -> None:
    # Lone surrogates included (a client may send "\ud800", an error may quote it): they have
    # no UTF-8 form, and encoding an error event with one raised inside the stream.
    event = encode_json_event({"error": text})
    assert event.startswith(b"data: ")
    assert event.endswith(b"\n\n")
    assert json.loads(event[6:-2].decode("utf-8")) == {"error": text}
