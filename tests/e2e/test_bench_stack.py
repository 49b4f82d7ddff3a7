"""`tgi-serverless bench` as a real process against a real router, PyWorker and backend: the
same short workload hop by hop, the outputs it writes, compare, and a target that is down."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import API_KEY, Stack
from tests.e2e.processes import ADMIN_KEY, run_command
from tests.ports import free_port

pytestmark = pytest.mark.e2e

WORKLOAD = ["--output-len", "8", "--prompt-len", "6", "--no-live", "--request-timeout", "60"]


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    """`tgi-serverless bench`, with the admin key that the router's /status wants."""
    return run_command(["bench", *args], {"TGIS_ADMIN_KEY": ADMIN_KEY}, timeout_s=180)


def run_ok(out: Path, *args: str) -> dict[str, Any]:
    done = bench(*args, *WORKLOAD, "--output-dir", str(out))
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == summary["summary"]["requests"]["total"]
    assert (out / "report.html").read_text().count("<svg") >= 4
    return summary


def test_through_the_router_with_its_workers_on_the_timeline(stack: Stack, tmp_path: Path) -> None:
    summary = run_ok(
        tmp_path / "router",
        "--url", stack.router_url, "--api-key", API_KEY, "--rate", "3", "--duration", "2",
    )  # fmt: skip
    figures = summary["summary"]
    assert figures["requests"]["ok"] == figures["requests"]["total"] == 6
    assert figures["route_time"]["count"] == 6
    assert figures["tokens"]["server_counted"] == 6
    assert figures["ttft"]["p50_ms"] > 0
    assert (
        summary["workers"]["peak_by_state"].get("ready", 0)
        + summary["workers"]["peak_by_state"].get("busy", 0)
        >= 1
    )


def test_straight_to_the_worker_and_to_the_backend_then_compare(
    stack: Stack, tmp_path: Path
) -> None:
    worker = run_ok(
        tmp_path / "worker",
        "--target", "worker", "--url", stack.router_url, "--api-key", API_KEY,
        "--concurrency", "2", "--duration", "2",
    )  # fmt: skip
    backend = run_ok(
        tmp_path / "backend",
        "--target", "backend", "--url", stack.backend_url, "--concurrency", "2", "--duration", "2",
    )  # fmt: skip
    assert worker["summary"]["requests"]["ok"] >= 2
    assert worker["summary"]["route_time"]["count"] == 0
    assert backend["summary"]["requests"]["ok"] >= 2

    hop_by_hop = bench(
        "compare", str(tmp_path / "backend/summary.json"), str(tmp_path / "worker/summary.json"),
        "--threshold", "1000000",
    )  # fmt: skip
    assert hop_by_hop.returncode == 0, hop_by_hop.stdout
    assert "ttft.p50_ms" in hop_by_hop.stdout
    same = bench(
        "compare", str(tmp_path / "worker/summary.json"), str(tmp_path / "worker/summary.json")
    )
    assert same.returncode == 0, same.stdout
    assert "no regression" in same.stdout


def test_a_router_that_is_down_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    done = bench("--url", f"http://127.0.0.1:{free_port()}", "--rate", "2", "--duration", "2")
    assert done.returncode == 1
    assert "does not answer" in done.stderr
