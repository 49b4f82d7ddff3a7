"""`tgi-serverless up` with its autoscaler: a cold pool forms, a dead worker is replaced from it,
and nothing outlives the command."""

from __future__ import annotations

import os
import signal
import urllib.request
from pathlib import Path

import pytest

from client import Client
from tests.e2e.processes import (
    ADMIN_AUTH,
    ManagedProcess,
    children_of,
    command_words,
    descendants,
    get_json,
    router_status,
    start_up,
    wait_for,
    wait_gone,
    worker_processes,
)

pytestmark = pytest.mark.e2e

API_KEY = "autoscale-key"


def pyworker_of(up: ManagedProcess, name: str) -> int | None:
    for pid in children_of(up.pid):
        args = command_words(pid)
        if "worker" in args and name in args:
            return pid
    return None


def workers_in(router_url: str, state: str) -> list[str]:
    _, body = router_status(router_url)
    workers = body["endpoints"][0]["workers"]
    return sorted(w["id"] for w in workers if w["state"] == state)


def ready_workers(router_url: str) -> list[str]:
    return workers_in(router_url, "ready")


def test_a_cold_worker_replaces_a_dead_one(tmp_path: Path, tgis_cache_dir: Path) -> None:
    up, router_url = start_up(
        tmp_path, tgis_cache_dir, 1, "--max-workers", "2", "--cold-workers", "2", api_key=API_KEY
    )
    try:
        # The cold pool: worker-2 loads, then parks: both its processes stay up.
        wait_for(
            "worker-2 to go cold",
            lambda: workers_in(router_url, "parked") == ["worker-2"],
            [up],
            limit_s=180,
        )
        assert len(worker_processes(up.pid)) == 4
        assert pyworker_of(up, "worker-2") is not None
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
        _, status = get_json(f"{router_url}/autoscaler", headers=ADMIN_AUTH)
        assert status["policy"] == "default"
        assert any("resume worker-2" in d["summary"] for d in status["decisions"])
        request = urllib.request.Request(f"{router_url}/autoscaler/metrics", headers=ADMIN_AUTH)
        with urllib.request.urlopen(request, timeout=5) as response:
            metrics = response.read().decode()
        assert 'tgis_autoscaler_desired_workers{pool="active"} 1.0' in metrics
        children = descendants(up.pid)
    finally:
        returncode = up.stop(signal.SIGTERM, grace_s=40)
    assert returncode == 0, up.output()[-3000:]
    assert wait_gone(children, limit_s=10) == []
