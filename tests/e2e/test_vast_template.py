"""templates/vast/README.md's commands, run as written: `vastai create template` (Vast's own
client, against the fake Vast API) sends exactly templates/vast/template.json, and the
`tgi-serverless endpoints` commands create the endpoint and its worker group in a real router."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import API_KEY
from tests.e2e.processes import (
    ADMIN_AUTH,
    ADMIN_KEY,
    REPO_ROOT,
    ManagedProcess,
    get_json,
    router_args,
    wait_for,
)
from tests.fakes.fake_vastai import FakeVast, fake_vast_in_a_thread
from tests.ports import free_port

pytestmark = pytest.mark.e2e

VAST = REPO_ROOT / "templates" / "vast"
VAST_KEY = "vast-template-test-key"


def readme_commands(starting: str) -> list[list[str]]:
    """The README's shell commands that start with `starting`, continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", (VAST / "README.md").read_text(), re.DOTALL)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line) for line in lines if line.strip().startswith(starting)]


def test_the_readmes_vastai_command_sends_template_json(tmp_path: Path) -> None:
    [command] = readme_commands("vastai create template")
    fake = FakeVast(api_key=VAST_KEY)
    vastai = str(Path(sys.executable).parent / "vastai")
    with fake_vast_in_a_thread(fake) as url:
        done = subprocess.run(
            [vastai, "--url", url, "--api-key", VAST_KEY, *command[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
    assert "New Template:" in done.stdout, done.stdout + done.stderr
    [sent] = fake.templates.values()
    assert sent == json.loads((VAST / "template.json").read_text())
    assert "-p 3000:3000" in sent["env"]
    for variable in ("MODEL_ID", "REPORT_ADDR", "HF_TOKEN", "TGIS_JOIN_TOKEN"):
        assert f"-e {variable}=" in sent["env"]
    assert sent["onstart"] == "/opt/tgi-serverless/src/templates/tgi/onstart.sh"
    assert (REPO_ROOT / sent["onstart"].removeprefix("/opt/tgi-serverless/src/")).exists()


def test_the_readmes_endpoint_commands_create_the_endpoint_and_its_group(tmp_path: Path) -> None:
    commands = readme_commands("tgi-serverless endpoints")
    assert [command[4:6] for command in commands] == [["create", "llama"], ["groups", "create"]]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = router_args(port, API_KEY, tmp_path / "state", "--admin-key", ADMIN_KEY)
    with ManagedProcess("router", args, {}, tmp_path) as router:
        wait_for("the router", lambda: get_json(f"{url}/health")[0] == 200, [router])
        for command in commands:
            argv = [url if word == "https://YOUR_ROUTER:8080" else word for word in command[1:]]
            done = subprocess.run(
                [sys.executable, "-m", "tgi_serverless", *argv],
                env={"TGIS_ADMIN_KEY": ADMIN_KEY, "PATH": "/usr/bin:/bin"},
                capture_output=True,
                text=True,
                timeout=60,
                cwd=REPO_ROOT,
            )
            assert done.returncode == 0, done.stdout + done.stderr
        _, shown = get_json(f"{url}/api/v0/endpoints/llama", headers=ADMIN_AUTH)
        endpoint = shown["endpoint"]
        assert endpoint["template"]["MODEL_ID"] == "HuggingFaceTB/SmolLM2-1.7B-Instruct"
        assert (endpoint["min_workers"], endpoint["max_workers"]) == (1, 4)
        _, shown = get_json(f"{url}/api/v0/workergroups/llama-24gb", headers=ADMIN_AUTH)
        group = shown["workergroup"]
        assert group["endpoint"] == "llama"
        assert group["search_params"] == "gpu_ram>=24 num_gpus=1"
