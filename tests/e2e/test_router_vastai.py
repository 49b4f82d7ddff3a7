"""`tgi-serverless router --provider vastai` against the fake Vast API (tests/fakes/fake_vastai):
the autoscaler creates an instance from the template with a join token in its environment; a
worker started as that instance would be (templates/cpu/onstart.sh, with that environment and
Vast's CONTAINER_ID) joins and serves; scaled to zero, the instance goes."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from client import Client
from tests.e2e.conftest import API_KEY
from tests.e2e.processes import (
    ADMIN_AUTH,
    ADMIN_KEY,
    REPO_ROOT,
    ManagedProcess,
    router_args,
    router_status,
    wait_for,
)
from tests.fakes.fake_vastai import FakeVast, fake_vast_in_a_thread
from tests.ports import free_port
from tests.stand_in import path_with_stand_in

pytestmark = pytest.mark.e2e

VAST_KEY = "vast-e2e-api-key"


def until(what: str, condition: Callable[[], bool], processes: list[ManagedProcess]) -> None:
    wait_for(what, condition, processes, 180)


def patch_params(router_url: str, changes: dict[str, Any]) -> int:
    request = urllib.request.Request(
        f"{router_url}/autoscaler/params",
        data=json.dumps(changes).encode(),
        headers={"Content-Type": "application/json", **ADMIN_AUTH},
        method="PATCH",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def test_the_router_scales_vast_instances_that_join_with_their_tokens(
    tmp_path: Path, tgis_cache_dir: Path
) -> None:
    fake = FakeVast(api_key=VAST_KEY)
    with fake_vast_in_a_thread(fake) as vast_url:
        port = free_port()
        router_url = f"http://127.0.0.1:{port}"
        scaling = ["--set", "min_workers=1", "--set", "max_workers=1", "--set", "cold_workers=0"]
        args = router_args(port, API_KEY, tmp_path / "state", "--admin-key", ADMIN_KEY)
        args += ["--provider", "vastai", "--vast-template", "tmpl-e2e", "--vast-url", vast_url]
        env = {"VAST_API_KEY": VAST_KEY, "TGIS_ALLOW_PRIVATE_WORKERS": "true"}
        with ManagedProcess("router-vast", [*args, *scaling], env, tmp_path) as router:
            until("an instance", lambda: len(fake.instances) == 1, [router])
            [(instance_id, instance)] = list(fake.instances.items())
            assert instance["template_hash_id"] == "tmpl-e2e"
            assert instance["label"] == "tgi-serverless:default"
            [create] = [body for _, path, body in fake.requests if path.startswith("/api/v0/asks")]
            assert create["env"]["TGIS_ENDPOINT"] == "default"
            assert set(create["env"]) == {"TGIS_ENDPOINT", "TGIS_JOIN_TOKEN"}  # no Vast key
            token = create["env"]["TGIS_JOIN_TOKEN"]

            # The instance boots: Vast runs the template's on-start with the env it was given.
            worker_port = free_port()
            worker_env = {
                **create["env"],
                "PATH": path_with_stand_in(),
                "REPORT_ADDR": router_url,
                "CONTAINER_ID": str(instance_id),
                "WORKER_PORT": str(worker_port),
                "TGIS_PUBLIC_URL": f"http://127.0.0.1:{worker_port}",
                "MODEL_LOG": str(tmp_path / "model.log"),
                "TGIS_CACHE_DIR": str(tgis_cache_dir),
            }
            onstart = ["bash", str(REPO_ROOT / "templates" / "cpu" / "onstart.sh")]
            flags = ["--host", "127.0.0.1", "--backend-port", str(free_port())]
            with ManagedProcess(
                "vast-instance", flags, worker_env, tmp_path, program=onstart
            ) as worker:
                instance["actual_status"] = "running"
                until("the instance's worker ready", lambda: ready(router_url, instance_id),
                      [router, worker])  # fmt: skip
                with Client(router_url, api_key=API_KEY) as client:
                    assert client.generate("Vast", max_new_tokens=2).generated_text
                assert token not in worker.output()

                assert list(fake.instances) == [instance_id]  # kept, never replaced
                assert "destroy" not in router.output()
                assert patch_params(router_url, {"min_workers": 0, "max_workers": 0}) == 200
                until("the instance to go", lambda: gone(fake, instance_id), [router])
        calls = [(method, path) for method, path, _ in fake.requests]
        path = f"/api/v0/instances/{instance_id}/"
        assert ("DELETE", path) in calls or ("PUT", path) in calls
        assert all(VAST_KEY not in json.dumps(body) for _, _, body in fake.requests)


def ready(router_url: str, instance_id: int) -> bool:
    status, body = router_status(router_url)
    workers = body["endpoints"][0]["workers"] if status == 200 else []
    return any(w["id"] == str(instance_id) and w["state"] == "ready" for w in workers)


def gone(fake: FakeVast, instance_id: int) -> bool:
    instance = fake.instances.get(instance_id)
    return instance is None or instance["intended_status"] == "stopped"


def test_up_on_vastai_starts_its_workers_as_instances_and_says_so(tmp_path: Path) -> None:
    fake = FakeVast(api_key=VAST_KEY)
    with fake_vast_in_a_thread(fake) as vast_url:
        port = free_port()
        args = [
            "up", "--port", str(port), "--state-dir", str(tmp_path / "state"),
            "--workers", "2", "--max-workers", "2", "--cold-workers", "0",
            "--model-id", "org/up-model",
            "--provider", "vastai", "--vast-template", "tmpl-up", "--vast-url", vast_url,
        ]  # fmt: skip
        with ManagedProcess("up-vast", args, {"VAST_API_KEY": VAST_KEY}, tmp_path) as up:
            until("two instances", lambda: len(fake.instances) == 2, [up])
            creates = [body for _, path, body in fake.requests if path.startswith("/api/v0/asks")]
            assert [body["env"]["MODEL_ID"] for body in creates] == ["org/up-model"] * 2
            tokens = {body["env"]["TGIS_JOIN_TOKEN"] for body in creates}
            assert len(tokens) == 2  # one each
            until("the banner", lambda: "scales on Vast.ai (2 to 2 workers" in up.output(), [up])
            assert "Ctrl-C stops the router; its Vast instances keep running." in up.output()
        assert "keep running" in up.output()
        assert len(fake.instances) == 2  # the router's exit leaves them
