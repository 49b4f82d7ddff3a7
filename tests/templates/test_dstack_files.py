"""templates/dstack/*.dstack.yml read by dstack's own configuration parser, the one `dstack apply`
uses (`parse_apply_configuration`), and what each file must say for our system to work there.

dstack pins many packages of its own, so it lives in a virtual environment apart from ours:
`make dstack-env` makes it (.ci/run does); without it these tests are skipped and say so."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.templates.compose import REPO, TEMPLATES

DSTACK_VENV = REPO / ".venv-dstack"
DSTACK_PYTHON = DSTACK_VENV / "bin" / "python"
pytestmark = pytest.mark.skipif(
    not (DSTACK_VENV / ".installed").exists(),
    reason="dstack's parser is not installed: run `make dstack-env` (CI's .ci/run does)",
)

# Run with dstack's interpreter: the parsed configuration of the YAML on stdin, as JSON, or the
# parser's error on stderr (exit 1).
PARSE = """
import json, sys, yaml
from dstack._internal.core.errors import ConfigurationError
from dstack._internal.core.models.configurations import parse_apply_configuration
try:
    configuration = parse_apply_configuration(yaml.safe_load(sys.stdin))
except ConfigurationError as error:
    sys.exit(str(error))
print(json.dumps({"class": type(configuration).__name__, **configuration.model_dump(mode="json")}))
"""


def parse(text: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(DSTACK_PYTHON), "-c", PARSE],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise ValueError(done.stderr.strip())
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def parse_template(name: str) -> dict[str, Any]:
    return parse((TEMPLATES / "dstack" / name).read_text())


def variables(configuration: dict[str, Any]) -> dict[str, str | None]:
    """The service's environment: a value, or None for a variable passed through from the shell
    that runs `dstack apply` (never written in the file)."""
    return {
        name: value if isinstance(value, str) else None
        for name, value in configuration["env"].items()
    }


def test_the_worker_is_a_service_that_joins_the_router_with_its_own_token() -> None:
    worker = parse_template("worker.dstack.yml")
    assert worker["class"] == "ServiceConfiguration"
    env = variables(worker)
    for secret in ("HF_TOKEN", "TGIS_JOIN_TOKEN"):
        assert env[secret] is None, f"{secret} must come from the shell, never the file"
    assert {"REPORT_ADDR", "TGIS_PUBLIC_URL", "TGIS_ROUTER_FINGERPRINT"} <= set(env)
    assert worker["port"]["container_port"] == int(env["WORKER_PORT"] or 0)


def test_the_worker_runs_the_tgi_images_on_start() -> None:
    """Its command is templates/tgi/onstart.sh where templates/tgi/Dockerfile copies this
    repository: the worker with TGI as its backend."""
    (command,) = parse_template("worker.dstack.yml")["commands"]
    dockerfile = (TEMPLATES / "tgi" / "Dockerfile").read_text()
    (copy,) = [line.split()[2] for line in dockerfile.splitlines() if line.startswith("COPY . ")]
    onstart = Path(command).relative_to(copy)
    assert onstart == Path("templates/tgi/onstart.sh")
    assert 'worker.sh" tgi' in (REPO / onstart).read_text()


def test_the_worker_is_one_replica_open_to_ticket_holders() -> None:
    """Tickets name one worker's URL and a join token registers one worker: several replicas
    behind one URL would break both. Clients hold tickets, not dstack tokens."""
    worker = parse_template("worker.dstack.yml")
    assert (worker["replicas"]["min"], worker["replicas"]["max"]) == (1, 1)
    assert worker["auth"] is False
    assert worker["gateway"] is True  # a URL without a path prefix, as a worker URL must be
    (probe,) = worker["probes"]
    assert probe["url"] == "/health"


def test_the_backend_is_an_openai_service_under_its_model_name() -> None:
    backend = parse_template("tgi.dstack.yml")
    assert backend["class"] == "ServiceConfiguration"
    model = backend["model"]
    assert (model["format"], model["prefix"]) == ("openai", "/v1")  # our backend's OpenAI routes
    assert model["name"] == variables(backend)["MODEL_ID"]
    words = shlex.split(backend["commands"][-1])
    assert words[1:3] == ["backend", "--host"]
    assert words[3] == "0.0.0.0"
    assert int(words[words.index("--port") + 1]) == backend["port"]["container_port"]
    assert backend["auth"] is True


def test_the_backend_installs_this_repository_in_dstacks_image() -> None:
    """The repository dstack copies in is this one, and the commands install it from there."""
    backend = parse_template("tgi.dstack.yml")
    (repo,) = backend["repos"]
    assert (TEMPLATES / "dstack" / repo["local_path"]).resolve() == REPO
    install, serve = (shlex.split(command) for command in backend["commands"])
    assert Path(install[0]) == Path(repo["path"]) / "templates" / "install.sh"
    assert (REPO / "templates" / "install.sh").exists()
    assert serve[0] == f"{install[1]}/bin/tgi-serverless"


def test_dstacks_parser_refuses_what_it_does_not_know() -> None:
    """The check can fail: a misspelt field is an error, not ignored."""
    text = (TEMPLATES / "dstack" / "worker.dstack.yml").read_text()
    with pytest.raises(ValueError, match="comands"):
        parse(text.replace("commands:", "comands:"))


def test_the_dstack_venv_runs_the_pinned_release() -> None:
    makefile = (REPO / "Makefile").read_text()
    done = subprocess.run(
        [str(DSTACK_PYTHON), "-c", "import importlib.metadata as m; print(m.version('dstack'))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert f"DSTACK := dstack=={done.stdout.strip()}" in makefile


def test_every_dstack_template_is_checked() -> None:
    checked = {"worker.dstack.yml", "tgi.dstack.yml"}
    assert {path.name for path in Path(TEMPLATES / "dstack").glob("*.yml")} == checked
