"""`tgi-serverless up --workers 0 --max-workers 2 --set inactivity_timeout=10`, a request to a
ready worker, then silence: the loop parks the worker once and does not resume it for the load
its windows remember (it used to resume and drain it every second)."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from client import Client
from tests.e2e.processes import descendants, start_up, wait_for, wait_gone

pytestmark = pytest.mark.e2e

API_KEY = "idle-key"
SILENCE_S = 15.0  # after the park: more than cold_down_delay_s plus a tick, many times over
DECISION = re.compile(r"autoscaler: \[default\] .*")


def decisions(log: str) -> list[str]:
    return DECISION.findall(log)


def test_one_request_then_silence_parks_the_worker_once(
    tmp_path: Path, tgis_cache_dir: Path
) -> None:
    up, router_url = start_up(
        tmp_path,
        tgis_cache_dir,
        0,
        "--max-workers", "2",
        "--set", "inactivity_timeout=10",
        api_key=API_KEY,
    )  # fmt: skip
    try:
        with Client(router_url, api_key=API_KEY) as client:
            assert client.generate("Hello", max_new_tokens=3).generated_text  # from zero
            # The one request, served at once: well within the stable window when the
            # inactivity timeout parks the worker (a start from zero can take longer than it).
            assert client.generate("Hello", max_new_tokens=3).generated_text
        wait_for("the worker to be parked", lambda: "to zero" in up.output(), [up], limit_s=120)
        parked_at = time.monotonic()
        wait_for(
            f"{SILENCE_S:g} s of silence",
            lambda: time.monotonic() - parked_at >= SILENCE_S,
            [up],
            limit_s=SILENCE_S + 30,
        )
        acted = decisions(up.output())
        children = descendants(up.pid)
    finally:
        returncode = up.stop(signal.SIGTERM, grace_s=40)
    assert returncode == 0, up.output()[-3000:]
    assert wait_gone(children, limit_s=10) == []
    parks = [line for line in acted if "to zero" in line]
    resumes = [line for line in acted if re.search(r"resume worker-\d", line)]
    assert len(parks) == 1, "\n".join(acted)
    assert resumes == [], "\n".join(acted)  # nothing to resume for: the silence went on
