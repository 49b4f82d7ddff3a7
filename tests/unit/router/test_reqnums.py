from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from router.reqnums import ReqnumFile, ReqnumHighWater


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 50),
    st.lists(st.lists(st.sampled_from("abc"), max_size=60), min_size=1, max_size=4),
)
def test_reqnums_keep_increasing_across_restarts(block: int, runs: list[list[str]]) -> None:
    stored = [0]
    writes = [0]

    def persist(ceiling: int) -> None:
        stored[0] = ceiling
        writes[0] += 1

    last: dict[str, int] = {}
    for run in runs:  # each run is a router process: it starts from the stored ceiling only
        high_water = ReqnumHighWater(start=stored[0], persist=persist, block=block)
        counters: dict[str, int] = {}
        for worker in run:
            if worker not in counters:
                counters[worker] = high_water.floor()
            counters[worker] += 1
            high_water.issued()
            reqnum = counters[worker]
            assert reqnum < stored[0]  # on disk before it is used
            assert reqnum > last.get(worker, -1)
            last[worker] = reqnum
    tickets = sum(len(run) for run in runs)
    per_write = max(block - 1, 1)  # one write per block, not one per ticket
    assert writes[0] <= len(runs) + -(-tickets // per_write)


def test_the_file_round_trips_and_ignores_garbage(tmp_path: Path) -> None:
    file = ReqnumFile(tmp_path)
    assert file.load() == 0
    file.store(12345)
    assert file.load() == 12345
    (tmp_path / "reqnum-high-water.json").write_text("{not json")
    assert file.load() == 0
