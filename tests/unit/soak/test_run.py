"""`python -m soak` when the stack cannot come up: it says so and exits 2, with no verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from soak.run import NOT_RUN, main, parse_args
from soak.verdict import Limits


def test_the_defaults_are_those_of_make_soak() -> None:
    args = parse_args([])
    assert (args.seconds, args.load, args.workers, args.capacity) == (600, 0.8, 2, None)
    assert Limits(args.max_lost, args.max_rss_growth, args.fd_slack, args.max_p99_drift) == Limits()


def test_a_stack_that_does_not_start_is_not_judged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `up --workers -1` refuses its arguments at once.
    assert main(["--workers", "-1", "--output-dir", str(tmp_path)]) == NOT_RUN
    assert "`up` exited with 2" in capsys.readouterr().err
    assert not (tmp_path / "verdict.json").exists()
    assert "--workers must be at least 1" in (tmp_path / "up.log").read_text()
