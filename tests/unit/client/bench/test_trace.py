"""Replaying request traces: speed, the time limit, lengths as requests, and bad files.
(The CSV layouts themselves are tested in tests/unit/common/test_trace.py.)"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from client.bench.errors import BenchInputError
from client.bench.plan import LoadPlan
from client.bench.trace import load_trace, replay
from client.bench.workload import MAX_LENGTH, LengthDist, RequestSpec, Workload
from common.trace import parse_trace

REPO = Path(__file__).resolve().parents[4]
OURS = "arrival_s,input_tokens,output_tokens\n0.5,3,7\n0.1,2,5\n\n2.5,4,0\n9.0,4,99999999\n"


def test_each_row_becomes_a_request_with_lengths_kept_within_range() -> None:
    replayed = replay(parse_trace(OURS, "t.csv"), speed=1.0, limit_s=100.0, rng=random.Random(0))
    assert replayed.arrivals == pytest.approx((0.0, 0.4, 2.4, 8.9))
    lengths = [(s.prompt_len, s.max_new_tokens) for s in replayed.specs]
    assert lengths == [(2, 5), (3, 7), (4, 1), (4, MAX_LENGTH)]
    assert [len(s.prompt.split()) for s in replayed.specs] == [2, 3, 4, 4]
    assert (replayed.source, replayed.speed) == ("t.csv", 1.0)


def test_speed_compresses_time_and_only_arrivals_within_the_limit_are_replayed() -> None:
    replayed = replay(parse_trace(OURS, "t.csv"), speed=2.0, limit_s=1.2, rng=random.Random(0))
    assert replayed.arrivals == pytest.approx((0.0, 0.2))
    assert len(replayed.specs) == 2
    assert replayed.speed == 2.0


def test_the_shipped_traces_replay_within_the_limit() -> None:
    for path in sorted((REPO / "data" / "traces").glob("*.csv")):
        replayed = load_trace(path, speed=1.0, limit_s=5.0, rng=random.Random(0))
        assert replayed.arrivals, path
        assert list(replayed.arrivals) == sorted(replayed.arrivals)
        assert replayed.arrivals[-1] < 5.0


def test_a_bad_row_is_an_input_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("arrival_s,input_tokens,output_tokens\n1,2\n", encoding="utf-8")
    with pytest.raises(BenchInputError, match=r"t.csv:2: expected 3 columns"):
        load_trace(path, speed=1.0, limit_s=1.0, rng=random.Random(0))


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
