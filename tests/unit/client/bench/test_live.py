"""The live status line: what it says, and that the last counts are always shown."""

from __future__ import annotations

import io

from client.bench.live import LiveView, status_line
from client.bench.progress import Progress
from client.bench.records import Outcome, RequestRecord


def finished(progress: Progress, outcome: Outcome, ttft: float | None = None) -> None:
    record = RequestRecord(0, 0.0, 1, 1, sent=0.0, outcome=outcome)
    if ttft is not None:
        record.tokens = [ttft]
        record.first_token = ttft
    progress.sent += 1
    progress.finished(record)


def test_the_status_line_counts_outcomes_apart_with_rates_and_ttft() -> None:
    progress = Progress(sent=1)  # one still in flight
    finished(progress, "ok", ttft=0.120)
    finished(progress, "overloaded")
    finished(progress, "error")
    line = status_line(progress, 2.0, 10.0, "load")
    assert line.startswith("load   2.0/10s")
    assert "sent 4  in flight 1  ok 1  429/503 1  failed 1" in line
    assert "1.5 req/s" in line
    assert "TTFT p50 120 ms p99 120 ms" in line


def test_a_piped_view_ends_with_the_final_counts() -> None:
    stream = io.StringIO()
    view = LiveView(stream)
    view.start("load", 5.0)
    progress = Progress()
    view.update(progress)  # the first line is written at once
    for _ in range(3):
        finished(progress, "ok", ttft=0.05)
        view.update(progress)  # too soon for another line
    assert stream.getvalue().count("\n") == 1
    view.finish()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert "sent 3  in flight 0  ok 3" in lines[-1]


def test_a_final_line_is_not_repeated_and_a_disabled_view_is_silent() -> None:
    stream = io.StringIO()
    view = LiveView(stream)
    view.start("load", 5.0)
    view.update(Progress())
    view.finish()
    assert stream.getvalue().count("\n") == 1
    quiet = io.StringIO()
    silent = LiveView(quiet, enabled=False)
    silent.start("load", 5.0)
    silent.update(Progress())
    silent.finish()
    assert quiet.getvalue() == ""
