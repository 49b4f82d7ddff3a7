"""Capacity measured while serving: two workers started at once on this machine benchmark at
the same time (sharing its cores), so their start-up figures can be far apart; after serving
load side by side, the figures they report agree. Nothing is tuned for the test: `up` gives each
backend its share of the cores (`router.cli.up.worker_env`), as it does for every user."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from client import Client
from protocol.router_status import RouterStatus, WorkerStatus
from tests.e2e.processes import ADMIN_AUTH, get_json, start_up, wait_for

pytestmark = pytest.mark.e2e

API_KEY = "capacity-api-key"
LOAD_S = 30.0
CLIENTS = 32  # enough that each worker has more in flight than its benchmark ran at once


def test_two_workers_started_at_once_report_capacities_within_2x_after_load(
    tmp_path: Path, tgis_cache_dir: Path
) -> None:
    up, router_url = start_up(
        tmp_path,
        tgis_cache_dir,
        2,
        "--max-workers",
        "2",
        api_key=API_KEY,
    )
    try:
        wait_for("two ready workers", lambda: len(_ready(router_url)) == 2, [up], limit_s=180)
        served = _load(router_url, LOAD_S)
        workers = _ready(router_url)
    finally:
        up.stop(signal.SIGTERM, grace_s=40)
    assert served > CLIENTS, "the load generator barely ran"
    assert len(workers) == 2, workers
    live = [worker.max_perf for worker in workers]
    print("start-up", [w.startup_perf for w in workers], "live", live, "answered", served)
    assert all(perf > 0 for perf in live)
    assert max(live) <= 2 * min(live), [w.model_dump() for w in workers]
    # The figures are the ones measured while serving, not the start-up benchmark's.
    assert all(w.max_perf != w.startup_perf and w.startup_perf > 0 for w in workers), workers


def _ready(router_url: str) -> list[WorkerStatus]:
    _, body = get_json(f"{router_url}/status", headers=ADMIN_AUTH)
    endpoint = RouterStatus.model_validate(body).endpoint("default")
    return [w for w in endpoint.workers if w.state in ("ready", "busy")] if endpoint else []


def _load(router_url: str, seconds: float) -> int:
    """`CLIENTS` clients, each sending a request after the other for `seconds`: how many were
    answered."""
    deadline = time.monotonic() + seconds
    answered = [0] * CLIENTS

    def client_loop(index: int) -> None:
        with Client(router_url, api_key=API_KEY, timeout=120) as client:
            while time.monotonic() < deadline:
                client.generate("Capacity is measured while serving", max_new_tokens=16)
                answered[index] += 1

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 180)
    return sum(answered)
