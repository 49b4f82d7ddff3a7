"""`tgi-serverless up` as a user runs it: it serves, then stops without leaving orphans."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from client import Client
from tests.e2e.processes import (
    ADMIN_KEY,
    ManagedProcess,
    descendants,
    start_up,
    wait_gone,
    worker_processes,
)

pytestmark = pytest.mark.e2e

API_KEY = "up-api-key"


def test_up_serves_every_worker_and_sigterm_stops_them_all(
    tmp_path: Path, tgis_cache_dir: Path
) -> None:
    up, router_url = start_up(tmp_path, tgis_cache_dir, 2, api_key=API_KEY)
    try:
        banner = up.output()
        assert "tgi-serverless is up" in banner
        assert API_KEY not in banner  # given by flag: never printed
        assert ADMIN_KEY not in banner  # given by variable: never printed
        assert "TGIS_API_KEY=<your API key>" in banner
        assert f"{router_url}/ui" in banner
        assert len(worker_processes(up.pid)) == 4  # a backend and a PyWorker per worker
        children = descendants(up.pid)
        with Client(router_url, api_key=API_KEY) as client:
            urls = {client.route(4).url for _ in range(6)}
            text = client.generate("Hello", max_new_tokens=5).generated_text
        assert len(urls) == 2  # both workers take traffic
        assert text
    finally:
        returncode = up.stop(signal.SIGTERM, grace_s=40)
    assert returncode == 0, up.output()[-3000:]
    assert wait_gone(children, limit_s=5) == []
    assert "stopped." in up.output()


def test_children_die_with_a_killed_up(tmp_path: Path, tgis_cache_dir: Path) -> None:
    up, _ = start_up(tmp_path, tgis_cache_dir, 1, api_key=API_KEY)
    children = descendants(up.pid)
    assert children
    up.stop(signal.SIGKILL)
    assert wait_gone(children, limit_s=30) == []


def test_up_from_zero_starts_a_worker_for_the_first_request(
    tmp_path: Path, tgis_cache_dir: Path
) -> None:
    up, router_url = start_up(tmp_path, tgis_cache_dir, 0, "--max-workers", "1", api_key=API_KEY)
    try:
        assert "no worker yet" in up.output()
        assert worker_processes(up.pid) == {}
        with Client(router_url, api_key=API_KEY, timeout=120) as client:
            text = client.generate("Hello", max_new_tokens=4).generated_text
        assert text
        assert len(worker_processes(up.pid)) == 2  # one backend and one PyWorker, on demand
        children = descendants(up.pid)
    finally:
        returncode = up.stop(signal.SIGTERM, grace_s=40)
    assert returncode == 0, up.output()[-3000:]
    assert wait_gone(children, limit_s=5) == []


def test_up_refuses_zero_workers_without_room_to_grow(tmp_path: Path) -> None:
    up = ManagedProcess("up0", ["up", "--workers", "0"], {}, tmp_path)
    assert up.wait(limit_s=60) == 2
    assert "--max-workers" in up.output()
