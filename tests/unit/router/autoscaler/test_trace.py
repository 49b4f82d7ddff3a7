from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.simulator.trace import Trace, TraceError, load_trace, parse_trace

TRACES = Path(__file__).resolve().parents[4] / "data" / "traces"


def parse(text: str, time_scale: float = 1.0) -> Trace:
    return parse_trace(csv.reader(io.StringIO(text)), name="t", time_scale=time_scale)


def test_native_rows_are_sorted_and_start_at_zero() -> None:
    trace = parse_trace(
        csv.reader(io.StringIO("arrival_s,input_tokens,output_tokens\n5,1,2\n3,4,5\n")),
        name="t",
    )
    assert trace.arrival_s == [0.0, 2.0]
    assert trace.output_tokens == [5, 2]


def test_azure_rows_are_read_as_they_are_with_a_time_scale() -> None:
    text = (
        "TIMESTAMP,ContextTokens,GeneratedTokens\r\n"
        "2023-11-16 18:17:03.9799600,4808,10\r\n"
        "2023-11-16 18:17:05.4799600,31,8"
    )
    trace = parse_trace(csv.reader(io.StringIO(text)), name="azure", time_scale=0.5)
    assert trace.arrival_s == pytest.approx([0.0, 0.75])
    assert trace.input_tokens == [4808, 31]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b,c\n1,2,3\n", "header must be"),
        ("arrival_s,input_tokens,output_tokens\n", "no requests"),
        ("arrival_s,input_tokens,output_tokens\n1,2\n", "line 2: expected 3 fields"),
        ("arrival_s,input_tokens,output_tokens\nsoon,2,3\n", "line 2"),
        ("arrival_s,input_tokens,output_tokens\n1,-2,3\n", "line 2: token counts"),
        ("arrival_s,input_tokens,output_tokens\n-1,2,3\n", "line 2"),
    ],
)
def test_bad_traces_name_the_line(text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        parse(text)


@given(st.lists(st.text(max_size=12), min_size=0, max_size=4), st.text(max_size=40))
def test_arbitrary_text_is_a_trace_or_a_trace_error(header: list[str], body: str) -> None:
    text = ",".join(header) + "\n" + body
    try:
        trace = parse_trace(csv.reader(io.StringIO(text)), name="t")
    except TraceError as exc:
        assert str(exc).startswith("t")  # noqa: PT017 - names the trace
        return
    assert trace.arrival_s == sorted(trace.arrival_s)
    assert trace.arrival_s[0] == 0.0


def test_the_shipped_traces_load() -> None:
    names = sorted(path.name for path in TRACES.glob("*.csv"))
    assert names == [
        "azure_llm_code_2023.csv",
        "azure_llm_conv_2023.csv",
        "synthetic_bursty.csv",
        "synthetic_diurnal.csv",
        "synthetic_spike.csv",
        "synthetic_steady.csv",
    ]
    assert len(load_trace(TRACES / "azure_llm_code_2023.csv")) == 8819


def test_a_missing_file_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read"):
        load_trace(tmp_path / "nope.csv")
