"""Reading request traces for replay: both layouts, speed and limit, and bad files."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from client.bench.errors import BenchInputError
from client.bench.plan import LoadPlan
from client.bench.trace import load_trace, parse_trace
from client.bench.workload import LengthDist, RequestSpec, Workload

REPO = Path(__file__).resolve().parents[4]
OURS = "arrival_s,input_tokens,output_tokens\n0.5,3,7\n0.1,2,5\n\n2.5,4,0\n"
AZURE = (
    "TIMESTAMP,ContextTokens,GeneratedTokens\r\n"
    "2023-11-16 18:15:46.6805900,374,44\r\n"
    "2023-11-16 18:15:50.9951690,396,109\r\n"
    "2023-11-16 18:15:51,879,55\r\n"
)


def test_our_layout_sorted_from_the_first_arrival_with_lengths_kept() -> None:
    trace = parse_trace(OURS, "t.csv", speed=1.0, limit_s=100.0, rng=random.Random(0))
    assert trace.arrivals == pytest.approx((0.0, 0.4, 2.4))
    assert [(s.prompt_len, s.max_new_tokens) for s in trace.specs] == [(2, 5), (3, 7), (4, 1)]
    assert [len(s.prompt.split()) for s in trace.specs] == [2, 3, 4]


def test_azure_timestamps_count_from_the_first_row_with_their_fractions() -> None:
    trace = parse_trace(AZURE, "a.csv", speed=2.0, limit_s=100.0, rng=random.Random(0))
    assert trace.arrivals == pytest.approx((0.0, (50.995169 - 46.68059) / 2, (51 - 46.68059) / 2))
    assert trace.specs[1].max_new_tokens == 109


def test_a_byte_order_mark_before_the_header_is_ignored() -> None:
    trace = parse_trace("\ufeff" + OURS, "t.csv", speed=1.0, limit_s=100.0, rng=random.Random(0))
    assert len(trace.arrivals) == 3


def test_only_arrivals_within_the_limit_are_replayed() -> None:
    trace = parse_trace(OURS, "t.csv", speed=1.0, limit_s=1.0, rng=random.Random(0))
    assert len(trace.arrivals) == len(trace.specs) == 2


def test_the_shipped_traces_all_load() -> None:
    for path in sorted((REPO / "data" / "traces").glob("*.csv")):
        trace = load_trace(path, speed=1.0, limit_s=5.0, rng=random.Random(0))
        assert trace.arrivals, path
        assert list(trace.arrivals) == sorted(trace.arrivals)
        assert trace.arrivals[-1] < 5.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("a,b,c\n1,2,3\n", "unknown trace columns a, b, c"),
        ("arrival_s,input_tokens,output_tokens\n", "has no requests"),
        ("arrival_s,input_tokens,output_tokens\n1,2\n", "t.csv:2: expected 3 columns"),
        ("arrival_s,input_tokens,output_tokens\nsoon,2,3\n", "t.csv:2: arrival_s 'soon'"),
        ("arrival_s,input_tokens,output_tokens\n-1,2,3\n", "must be a number >= 0"),
        ("arrival_s,input_tokens,output_tokens\n1,2,x\n", "token count 'x' is not a number"),
        ("arrival_s,input_tokens,output_tokens\n1,-2,3\n", "must be >= 0"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n16/11/2023,2,3\n", "is not YYYY-MM-DD"),
    ],
)
def test_bad_traces_say_what_and_where(text: str, message: str) -> None:
    with pytest.raises(BenchInputError, match=message):
        parse_trace(text, "t.csv", speed=1.0, limit_s=10.0, rng=random.Random(0))


def test_a_missing_trace_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(BenchInputError, match="cannot read the trace"):
        load_trace(tmp_path / "none.csv", speed=1.0, limit_s=1.0, rng=random.Random(0))


def test_shards_deal_arrivals_and_their_requests_out_alike() -> None:
    specs = tuple(RequestSpec(f"p{i}", 1, i + 1) for i in range(5))
    workload = Workload(LengthDist("fixed", 1), LengthDist("fixed", 1), specs, in_order=True)
    plan = LoadPlan("open", arrivals=(0.0, 0.1, 0.2, 0.3, 0.4))
    rng = random.Random(0)
    for index in range(2):
        part, work = plan.shard(index, 2), workload.shard(index, 2)
        offsets = part.offsets(rng)
        sent = [work.sample(rng).max_new_tokens for _ in offsets]
        assert sent == [round(t * 10) + 1 for t in offsets]
    assert [workload.sample(rng).prompt for _ in range(6)] == ["p0", "p1", "p2", "p3", "p4", "p0"]
