"""`tgi-serverless simulate` as the console script runs it (in process, through cli.main)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tgi_serverless.cli import main

TRACES = Path(__file__).resolve().parents[4] / "data" / "traces"


def test_json_has_the_promised_keys(capsys: pytest.CaptureFixture[str]) -> None:
    trace = TRACES / "synthetic_spike.csv"
    assert main(["simulate", "--trace", str(trace), "--policy", "kpa", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["requests"] == result["served"] == 1516
    for key in ("slo_attainment", "p99_queue_time_s", "p99_ttft_s", "worker_seconds"):
        assert isinstance(result[key], float)
    assert result["cold_starts"] > 0
    assert result["policy"] == "kpa"
    assert result["flaps"] == 0
    assert result["billed_seconds"] == pytest.approx(result["worker_seconds"])  # by the second
    assert result["cost"] > 0


def test_a_minimum_billing_period_raises_the_cost(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", "--trace", str(TRACES / "synthetic_spike.csv"), "--json"]
    assert main([*args, "--storage-price", "0"]) == 0
    per_second = json.loads(capsys.readouterr().out)
    assert main([*args, "--storage-price", "0", "--min-billed", "3600"]) == 0
    hourly = json.loads(capsys.readouterr().out)
    spells = hourly["cold_starts"] + hourly["resumes"]
    assert hourly["billed_seconds"] >= 3600 * spells > per_second["billed_seconds"]
    assert hourly["cost"] == pytest.approx(hourly["billed_seconds"] / 3600, rel=1e-3)


def test_text_output_and_a_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "run.svg"
    args = ["simulate", "--trace", str(TRACES / "azure_llm_code_2023.csv"), "--plot", str(plot)]
    assert main([*args, "--time-scale", "0.5", "--set", "cold_workers=3"]) == 0
    out = capsys.readouterr().out
    assert "SLO attainment" in out
    assert "worker-seconds" in out
    assert "flaps" in out
    assert "cost" in out
    svg = plot.read_text()
    assert svg.startswith("<svg")
    for label in ("time, s", "tokens/s", "workers", "desired", "ready", "cold pool", "SLO"):
        assert label in svg


def exit_code(*args: str) -> int:
    """What the console script exits with: what `main` returns, or argparse's exit."""
    try:
        return main(["simulate", *args])
    except SystemExit as exited:
        return exited.code if isinstance(exited.code, int) else -1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "target_util=1.5"], "target_util: Input should be less than or equal to 1"),
        (["--set", "max_workers=2", "--set", "cold_workers=4"], "max_workers must be in [4,"),
        (["--set", "nonsense"], "NAME=VALUE"),
        (["--time-scale", "0"], "--time-scale: must be a number above 0, got 0"),
        (["--start-time", "-1"], "--start-time: must be a number >= 0, got -1"),
        (["--slots", "0"], "--slots: must be a whole number >= 1, got 0"),
        (["--failure-rate", "1"], "--failure-rate: must be a number >= 0 and below 1, got 1"),
        (["--min-billed", "-5"], "--min-billed: must be a number >= 0, got -5"),
    ],
)
def test_bad_values_exit_2_with_a_clear_message(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert exit_code("--trace", str(TRACES / "synthetic_spike.csv"), *extra) == 2
    assert message in capsys.readouterr().err


def test_a_bad_trace_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("when,what\n1,2\n")
    assert exit_code("--trace", str(bad)) == 2
    assert "unknown trace columns when, what" in capsys.readouterr().err
