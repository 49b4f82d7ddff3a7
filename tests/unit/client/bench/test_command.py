"""`tgi-serverless bench`: bad input exits 2 before any load; compare's exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ports import free_port
from tests.unit.client.bench.documents import SUMMARIES
from tgi_serverless.cli import main

DOWN = f"http://127.0.0.1:{free_port()}"


def bench(*args: str) -> int:
    return main(["bench", "--url", DOWN, "--no-live", *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "0"], "--rate: must be a number above 0 and at most 100000, got 0"),
        (["--rate", "fast"], "--rate: not a number"),
        (["--duration", "-1"], "--duration: must be a number above 0"),
        (["--burstiness", "0"], "--burstiness: must be a number above 0 (1 = Poisson, inf = "),
        (["--concurrency", "0"], "--concurrency: must be a whole number between 1 and 100000"),
        (["--target", "nope"], "invalid choice"),
    ],
)
def test_malformed_flags_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        bench(*args)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prompt-len", "zipf:1:2"], "--prompt-len 'zipf:1:2' is not a length"),
        (["--dataset", "/nonexistent/prompts.jsonl"], "cannot read the dataset"),
        (["--rate", "5", "--concurrency", "2"], "exclude each other"),
        (["--sweep", "--concurrency", "2"], "choose one of"),
        (["--duration", "5", "--warmup", "3", "--cooldown", "2"], "must be shorter"),
        (["--scenario", "step"], "needs --steps"),
        (["--scenario", "step", "--steps", "5"], "is not RATE:SECONDS"),
        (["--scenario", "idle-burst"], "needs --rate"),
        (["--steps", "1:1"], "only for --scenario step"),
        (["--url", "ftp://x"], "must be an http(s) URL"),
        (["--target", "backend", "--url", "http://b:1"], "takes one --url; several are routers"),
        (["--trace", "/nonexistent.csv"], "cannot read the trace"),
        (["--trace", "x.csv", "--rate", "5"], "drop --rate and --dataset"),
        (["--trace", "x.csv", "--sweep"], "choose one of --sweep, --trace"),
    ],
)
def test_inconsistent_input_exits_2_with_a_clear_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message in err


def test_openai_needs_a_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--target", "openai", "--no-live"]) == 2
    assert "--target openai needs --url" in capsys.readouterr().err


def test_a_target_that_is_down_stops_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = bench("--target", "backend", "--rate", "5", "--output-dir", str(tmp_path / "out"))
    assert code == 1
    assert f"the backend target at {DOWN}/health does not answer" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def write(path: Path, ttft_p50: float) -> Path:
    """A summary.json of an earlier version, with its TTFT p50 set to `ttft_p50`."""
    document = json.loads((SUMMARIES / "before-preempted.json").read_text(encoding="utf-8"))
    document["summary"]["ttft"]["p50_ms"] = ttft_p50
    path.write_text(json.dumps(document, indent=2))
    return path


def test_compare_exits_1_on_a_regression_and_0_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = write(tmp_path / "a.json", 100), write(tmp_path / "b.json", 130)
    assert main(["bench", "compare", str(a), str(b)]) == 1
    assert "regression: ttft.p50_ms" in capsys.readouterr().out
    assert main(["bench", "compare", str(a), str(b), "--threshold", "50"]) == 0
    assert main(["bench", "compare", str(b), str(a)]) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "is not a bench summary.json"),
        ('{"summary": {"ttft": {"p50_ms": 1.0}}}', "is not a bench summary.json"),
        ("{", "is not JSON"),
    ],
)
def test_compare_refuses_files_that_are_not_summaries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text(text)
    assert main(["bench", "compare", str(junk), str(junk)]) == 2
    assert message in capsys.readouterr().err
