"""The router's status page in a real headless browser: a real router process, a worker report
and a second endpoint created through the API, then Chromium renders /ui and we read its DOM.
The page wants the admin key: Chromium gives it as the Basic password in the URL, as a browser
gives what its prompt was told."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.processes import ManagedProcess, get_json, post, router_args, wait_for
from tests.ports import free_port
from tests.worker_identity import bearer, join_token_from_api

pytestmark = pytest.mark.e2e

ADMIN_KEY = "e2e-admin-key"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on this machine (.ci/run installs Debian's `chromium`)")


def test_the_status_page_renders_endpoints_and_workers(tmp_path: Path) -> None:
    browser = _chromium()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = router_args(port, "e2e-endpoint-key", tmp_path / "state", "--admin-key", ADMIN_KEY)
    env = {"TGIS_ALLOW_PRIVATE_WORKERS": "true"}
    with ManagedProcess("router", args, env, tmp_path) as router:
        wait_for("the router", lambda: get_json(f"{url}/health")[0] == 200, [router], 60)
        report = {
            "id": "gpu-box-1",
            "url": "http://127.0.0.1:9",
            "state": "ready",
            "max_perf": 250.0,
            "in_flight_workload": 40.0,
        }
        worker_auth = bearer(join_token_from_api(url, ADMIN_KEY))
        assert post(f"{url}/worker_status/", report, worker_auth)[0] == 200
        admin_auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
        assert post(f"{url}/api/v0/endpoints/", {"name": "chat"}, admin_auth)[0] == 201
        dom = subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={tmp_path / 'chromium-profile'}",
                "--dump-dom",
                f"http://admin:{ADMIN_KEY}@127.0.0.1:{port}/ui",
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=True,
        ).stdout
    assert "<h1>tgi-serverless router</h1>" in dom
    assert 'data-endpoint="default"' in dom
    assert 'data-endpoint="chat"' in dom
    row = dom.split('<tr data-worker="gpu-box-1">', 1)[1].split("</tr>", 1)[0]
    assert '<td class="state">ready</td>' in row
    assert '<td class="num">40</td>' in row  # in-flight load
    assert '<td class="num">250.0</td>' in row  # max perf
    assert "e2e-endpoint-key" not in dom
    assert ADMIN_KEY not in dom
