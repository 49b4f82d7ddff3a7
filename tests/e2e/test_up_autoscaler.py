"""`tgi-serverless up` with its autoscaler: a cold pool forms, a dead worker is replaced from it,
and nothing outlives the command."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from client import Client
from tests.e2e.processes import ManagedProcess, children_of, get_json, pid_alive, wait_for
from tests.ports import free_port

pytestmark = pytest.mark.e2e

API_KEY = "autoscale-key"


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def pyworker_of(up: ManagedProcess, name: str) -> int | None:
    for pid in children_of(up.pid):
        args = cmdline(pid)
        if "worker" in args and name in args:
            return pid
    return None


def descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        children = children_of(frontier.pop())
        found.extend(children)
        frontier.extend(children)
    return found


def ready_workers(router_url: str) -> list[str]:
    _, body = get_json(f"{router_url}/status")
    workers = body["endpoints"][0]["workers"]
    return sorted(w["id"] for w in workers if w["state"] == "ready")


def test_a_cold_worker_replaces_a_dead_one(tmp_path: Path, tgis_cache_dir: Path) -> None:
    port = free_port()
    router_url = f"http://127.0.0.1:{port}"
    args = [
        "up",
        "--port", str(port),
        "--workers", "1",
        "--max-workers", "2",
        "--cold-workers", "2",
        "--api-key", API_KEY,
        "--state-dir", str(tmp_path / "state"),
    ]  # fmt: skip
    up = ManagedProcess("up", args, {"TGIS_CACHE_DIR": str(tgis_cache_dir)}, tmp_path)
    try:
        wait_for("the banner", lambda: "tgi-serverless is up" in up.output(), [up], limit_s=180)
        # The cold pool: worker-2 loads, then its PyWorker stops; its backend stays up.
        wait_for(
            "worker-2 to go cold",
            lambda: (
                "worker-2" in up.output()
                and len(children_of(up.pid)) == 3
                and pyworker_of(up, "worker-2") is None
            ),
            [up],
            limit_s=180,
        )
        assert ready_workers(router_url) == ["worker-1"]
        victim = pyworker_of(up, "worker-1")
        assert victim is not None
        os.kill(victim, signal.SIGKILL)  # worker-1 dies without a word
        wait_for(
            "worker-2 to be resumed",
            lambda: ready_workers(router_url) == ["worker-2"],
            [up],
            limit_s=120,
        )
        with Client(router_url, api_key=API_KEY) as client:
            assert client.generate("Hello", max_new_tokens=3).generated_text
        _, status = get_json(f"{router_url}/autoscaler")
        assert status["policy"] == "default"
        assert any("resume worker-2" in d["summary"] for d in status["decisions"])
        with urllib.request.urlopen(f"{router_url}/autoscaler/metrics", timeout=5) as response:
            metrics = response.read().decode()
        assert 'tgis_autoscaler_desired_workers{pool="active"} 1.0' in metrics
        children = descendants(up.pid)
    finally:
        returncode = up.stop(signal.SIGTERM, grace_s=40)
    assert returncode == 0, up.output()[-3000:]
    deadline = time.monotonic() + 10
    while [p for p in children if pid_alive(p)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [p for p in children if pid_alive(p)] == []
