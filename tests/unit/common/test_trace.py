"""Reading request traces: both layouts, sorting, bad rows named by line, the shipped files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.trace import Trace, TraceError, parse_trace

TRACES = Path(__file__).resolve().parents[3] / "data" / "traces"
OURS = "arrival_s,input_tokens,output_tokens\n0.5,3,7\n0.1,2,5\n\n2.5,4,0\n"
AZURE = (
    "TIMESTAMP,ContextTokens,GeneratedTokens\r\n"
    "2023-11-16 18:15:46.6805900,4808,44\r\n"
    "2023-11-16 18:15:50.9951690,396,109\r\n"
    "2023-11-16 18:15:51,879,55\r\n"
)


def test_our_layout_is_sorted_from_the_first_arrival_with_counts_as_they_are() -> None:
    trace = parse_trace(OURS, "data/t.csv")
    assert trace.arrival_s == pytest.approx([0.0, 0.4, 2.4])
    assert trace.input_tokens == [2, 3, 4]
    assert trace.output_tokens == [5, 7, 0]
    assert (trace.source, trace.name, len(trace)) == ("data/t.csv", "t", 3)
    assert trace.duration_s == pytest.approx(2.4)
    assert trace.mean_output_tokens == 4.0


def test_azure_timestamps_count_from_the_first_row_with_their_fractions() -> None:
    trace = parse_trace(AZURE, "a.csv")
    assert trace.arrival_s == pytest.approx([0.0, 50.995169 - 46.68059, 51 - 46.68059])
    assert trace.input_tokens == [4808, 396, 879]
    assert trace.output_tokens == [44, 109, 55]


@pytest.mark.parametrize(
    "text",
    [
        "\ufeff" + OURS,
        OURS.replace("arrival_s,input_tokens", "Arrival_S, Input_Tokens"),
        OURS.replace("\n\n", "\n , ,\n"),
        OURS.replace("\n", "\r\n"),
    ],
    ids=["byte-order mark", "header case and spaces", "blank cells", "CRLF"],
)
def test_harmless_variations_read_the_same(text: str) -> None:
    assert parse_trace(text, "t.csv") == parse_trace(OURS, "t.csv")


def test_scaling_multiplies_every_arrival() -> None:
    trace = parse_trace(AZURE, "a.csv").scaled(0.5)
    assert trace.arrival_s == pytest.approx([0.0, (50.995169 - 46.68059) / 2, (51 - 46.68059) / 2])
    assert trace.output_tokens == [44, 109, 55]
    with pytest.raises(ValueError, match="above 0"):
        trace.scaled(0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the trace t.csv is empty"),
        ("a,b,c\n1,2,3\n", "t.csv: unknown trace columns a, b, c; expected arrival_s,"),
        ("arrival_s,input_tokens,output_tokens\n", "the trace t.csv has no requests"),
        ("arrival_s,input_tokens,output_tokens\n1,2\n", "t.csv:2: expected 3 columns, got 2"),
        ("arrival_s,input_tokens,output_tokens\n1,2,3\nsoon,2,3\n", "t.csv:3: arrival_s 'soon'"),
        ("arrival_s,input_tokens,output_tokens\n-1,2,3\n", "t.csv:2: arrival_s must be a number"),
        ("arrival_s,input_tokens,output_tokens\nnan,2,3\n", "t.csv:2: arrival_s must be a number"),
        ("arrival_s,input_tokens,output_tokens\ninf,2,3\n", "t.csv:2: arrival_s must be a number"),
        ("arrival_s,input_tokens,output_tokens\n1,2,x\n", "t.csv:2: token count 'x' is not a"),
        ("arrival_s,input_tokens,output_tokens\n1,-2,3\n", "t.csv:2: token count must be >= 0"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n16/11/2023,2,3\n", "t.csv:2: TIMESTAMP '16/"),
        (
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.5e3,2,3\n",
            "is not YYYY-MM-DD HH:MM:SS",
        ),
        ("arrival_s,input_tokens,output_tokens\n" + "1" * 200_000 + ",2,3\n", "not a CSV file"),
    ],
)
def test_bad_traces_say_what_and_where(text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        parse_trace(text, "t.csv")


@given(st.lists(st.text(max_size=12), min_size=0, max_size=4), st.text(max_size=40))
def test_arbitrary_text_is_a_trace_or_a_trace_error(header: list[str], body: str) -> None:
    text = ",".join(header) + "\n" + body
    try:
        trace = parse_trace(text, "in.csv")
    except TraceError as exc:
        assert "in.csv" in str(exc)  # noqa: PT017 - names the trace
        return
    assert trace.arrival_s == sorted(trace.arrival_s)
    assert trace.arrival_s[0] == 0.0
    assert len(trace.input_tokens) == len(trace.output_tokens) == len(trace)


def test_the_shipped_traces_all_load() -> None:
    sizes = {
        path.name: len(parse_trace(path.read_text(encoding="utf-8"), str(path)))
        for path in sorted(TRACES.glob("*.csv"))
    }
    assert sorted(sizes) == [
        "azure_llm_code_2023.csv",
        "azure_llm_conv_2023.csv",
        "synthetic_bursty.csv",
        "synthetic_diurnal.csv",
        "synthetic_spike.csv",
        "synthetic_steady.csv",
    ]
    assert (sizes["azure_llm_code_2023.csv"], sizes["azure_llm_conv_2023.csv"]) == (8819, 19366)


def test_a_trace_can_be_built_from_parallel_lists() -> None:
    trace = Trace("speed", [0.0, 1.0], [5, 6], [7, 8])
    assert (trace.name, len(trace), trace.duration_s, trace.mean_output_tokens) == (
        "speed", 2, 1.0, 7.5,
    )  # fmt: skip


def test_azure_timestamps_are_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    # Read as local time, a trace that crosses a daylight-saving change (New York, 5 Nov 2023,
    # 02:00 → 01:00) gained or lost an hour between two arrivals one second apart.
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        trace = parse_trace(
            "TIMESTAMP,ContextTokens,GeneratedTokens\n"
            "2023-11-05 01:59:59,1,1\n2023-11-05 02:00:00,1,1\n",
            "a.csv",
        )
    finally:
        monkeypatch.undo()
        time.tzset()
    assert trace.arrival_s == [0.0, 1.0]
