from __future__ import annotations

import pytest

from router.state.reqnums import ReqnumBlocks, ReqnumsExhausted


def test_numbers_come_from_the_reserved_block_in_order() -> None:
    blocks = ReqnumBlocks(4, max_age_s=3.0)
    blocks.add("w", last=104, now=0.0)
    assert [blocks.take("w", 0.1) for _ in range(4)] == [101, 102, 103, 104]
    with pytest.raises(ReqnumsExhausted):
        blocks.take("w", 0.1)


def test_no_block_no_number() -> None:
    with pytest.raises(ReqnumsExhausted):
        ReqnumBlocks(4, max_age_s=3.0).take("w", 0.0)


def test_a_spare_block_follows_the_current_one() -> None:
    blocks = ReqnumBlocks(4, max_age_s=3.0)
    blocks.add("w", last=4, now=0.0)
    assert blocks.take("w", 0.0) == 1
    blocks.add("w", last=20, now=0.0)  # reserved early: the current one is still in use
    assert [blocks.take("w", 0.0) for _ in range(4)] == [2, 3, 4, 17]


def test_an_old_block_is_given_up_for_good() -> None:
    blocks = ReqnumBlocks(4, max_age_s=3.0)
    blocks.add("w", last=4, now=0.0)
    assert blocks.take("w", 1.0) == 1
    assert not blocks.has("w", 3.0)
    with pytest.raises(ReqnumsExhausted):
        blocks.take("w", 3.0)
    blocks.add("w", last=40, now=3.0)
    assert blocks.take("w", 3.0) == 37  # 2, 3 and 4 are never issued


def test_a_block_is_wanted_before_the_current_one_runs_out_or_ages() -> None:
    blocks = ReqnumBlocks(4, max_age_s=3.0)
    assert blocks.wanted(["w"], 0.0) == ["w"]
    blocks.add("w", last=4, now=0.0)
    assert blocks.wanted(["w"], 0.5) == []
    assert blocks.wanted(["w"], 1.0) == ["w"]  # a third of the way to its age limit
    blocks.take("w", 0.5)
    blocks.take("w", 0.5)
    assert blocks.wanted(["w"], 0.5) == ["w"]  # half used
    blocks.add("w", last=8, now=0.5)
    assert blocks.wanted(["w"], 0.6) == []  # a young spare is ready


def test_forget_drops_the_workers_blocks() -> None:
    blocks = ReqnumBlocks(4, max_age_s=3.0)
    blocks.add("w", last=4, now=0.0)
    blocks.forget("w")
    assert blocks.known() == []
    assert not blocks.has("w", 0.0)
