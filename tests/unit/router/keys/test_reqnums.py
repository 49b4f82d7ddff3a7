from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from router.keys.reqnums import ReqnumFile, ReqnumHighWater


class Disk:
    """The stored ceiling, and writes that land when the test says (a writer thread's pace):
    `submit` queues a write; `land()` performs it; waiting on its future performs it first, as
    waiting for a thread does. A write never landed is one a crash cut short."""

    def __init__(self) -> None:
        self.stored = 0
        self.writes = 0
        self.in_flight: list[tuple[Callable[[], None], Future[None]]] = []

    def persist(self, ceiling: int) -> None:
        self.stored = ceiling
        self.writes += 1

    def submit(self, write: Callable[[], None]) -> Future[None]:
        disk = self

        class Deferred(Future[None]):
            def result(self, timeout: float | None = None) -> None:
                disk.land(self)
                return super().result(timeout)

            def exception(self, timeout: float | None = None) -> BaseException | None:
                disk.land(self)
                return super().exception(timeout)

        future = Deferred()
        self.in_flight.append((write, future))
        return future

    def land(self, which: Future[None] | None = None) -> None:
        for index, (write, future) in enumerate(self.in_flight):
            if which is None or future is which:
                del self.in_flight[index]
                try:
                    write()
                except OSError as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(None)
                return

    def crash(self) -> None:
        self.in_flight.clear()


# mostly tickets (for worker a, b or c); now and then the writer thread finishes its write
# ("land"), or the router stops, losing a write in flight, and starts again ("restart")
step = st.sampled_from([*"abcabcabcabc", "land", "restart"])


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 20), st.lists(step, max_size=120), st.booleans())
def test_reqnums_stay_unique_and_below_the_stored_ceiling_across_restarts(
    block: int, steps: list[str], in_thread: bool
) -> None:
    """Whether the next block is written in line or by a writer that lands its writes late (or
    never, when the router restarts first), every number handed out is below the ceiling on
    disk at that moment, and each worker's numbers keep increasing across restarts."""
    disk = Disk()
    submit = disk.submit if in_thread else None

    def start() -> ReqnumHighWater:
        return ReqnumHighWater(start=disk.stored, persist=disk.persist, block=block, submit=submit)

    high_water = start()
    counters: dict[str, int] = {}
    last: dict[str, int] = {}
    tickets = 0
    for action in steps:
        if action == "land":
            disk.land()
        elif action == "restart":
            disk.crash()
            high_water, counters = start(), {}
        else:
            if action not in counters:
                counters[action] = high_water.floor()
            counters[action] += 1  # take_reqnum
            high_water.issued()
            reqnum = counters[action]
            tickets += 1
            assert reqnum < disk.stored  # on disk before it is handed out
            assert reqnum < high_water.ceiling
            assert reqnum > last.get(action, -1)
            last[action] = reqnum
    restarts = steps.count("restart")
    assert disk.writes <= 1 + restarts + 2 * (tickets // block + 1)  # per block, not per ticket


def test_a_restart_right_after_a_block_boundary_starts_above_everything_handed_out() -> None:
    """For each count of tickets around the first two block boundaries, with the next block's
    write landed or not: the restarted router's first number is above every earlier one."""
    block = 4
    for count in range(3 * block):
        for landed in (False, True):
            disk = Disk()
            high_water = ReqnumHighWater(
                start=1000, persist=disk.persist, block=block, submit=disk.submit
            )
            floor = high_water.floor()
            for _ in range(count):
                high_water.issued()
            handed_out = floor + count  # one worker: its numbers are floor+1 .. floor+count
            if landed:
                disk.land()
            disk.crash()
            restarted = ReqnumHighWater(start=disk.stored, persist=disk.persist, block=block)
            assert restarted.floor() + 1 > handed_out, (count, landed)


def test_the_next_block_is_written_by_the_writer_while_issuing_goes_on() -> None:
    """With a real writer thread and a write that takes 0.3 s, counting tickets past the point
    where the next block is reserved takes no time: nobody waits for the write."""
    block = 10
    release = threading.Event()
    stored: list[int] = []

    def slow_persist(ceiling: int) -> None:
        if stored:  # the first (start-up) write is not the one under test
            release.wait(5)
            time.sleep(0.3)
        stored.append(ceiling)

    with ThreadPoolExecutor(max_workers=1) as writer:
        high_water = ReqnumHighWater(
            start=0, persist=slow_persist, block=block, submit=writer.submit
        )
        started = time.monotonic()
        for _ in range(block - 2):  # past the reservation, short of the ceiling
            high_water.issued()
        assert time.monotonic() - started < 0.1
        assert high_water.ceiling == block  # what is on disk: the new block is not, yet
        release.set()
        high_water.issued()
        high_water.issued()  # the ceiling is reached: this one waits for the write in flight
        assert high_water.ceiling == 2 * block
        assert stored == [block, 2 * block]
        assert high_water.floor() < high_water.ceiling


def test_a_failed_write_is_tried_again_and_numbers_stay_below_the_ceiling() -> None:
    disk = Disk()
    failures = [1]

    def flaky(ceiling: int) -> None:
        if disk.writes and failures[0]:
            failures[0] -= 1
            raise OSError("disk full")
        disk.persist(ceiling)

    high_water = ReqnumHighWater(start=0, persist=flaky, block=4, submit=disk.submit)
    for _ in range(20):
        high_water.issued()
        disk.land()
        assert high_water.floor() < disk.stored
    assert failures == [0]


def test_the_file_round_trips_and_ignores_garbage(tmp_path: Path) -> None:
    file = ReqnumFile(tmp_path)
    assert file.load() == 0
    file.store(12345)
    assert file.load() == 12345
    (tmp_path / "reqnum-high-water.json").write_text("{not json")
    assert file.load() == 0
