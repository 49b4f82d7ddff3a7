"""The deploy templates' scripts and Dockerfiles pass shellcheck and hadolint (both from PyPI,
in the dev extra), and every script can be run as it is."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(sys.executable).parent


def shell_scripts() -> list[Path]:
    """Every script under templates/ and tests/bin/ that a shell runs (by its first line)."""
    candidates = [*ROOT.glob("templates/**/*"), *ROOT.glob("tests/bin/*")]
    return sorted(path for path in candidates if path.is_file() and _is_shell(path))


def _is_shell(path: Path) -> bool:
    with path.open("rb") as handle:
        first = handle.readline()
    return first.startswith(b"#!") and first.rstrip().endswith((b"bash", b"/sh"))


def tool(name: str) -> str:
    found = shutil.which(name, path=str(TOOLS)) or shutil.which(name)
    assert found, f"{name} is missing: `make install` (the dev extra) installs it"
    return found


def test_the_templates_hold_the_scripts_they_promise() -> None:
    names = {str(path.relative_to(ROOT)) for path in shell_scripts()}
    assert {"templates/install.sh", "templates/worker.sh"} <= names
    assert {"templates/tgi/onstart.sh", "templates/cpu/onstart.sh"} <= names


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_script_passes_shellcheck_and_is_executable(script: Path) -> None:
    done = subprocess.run(
        [tool("shellcheck"), "--external-sources", str(script)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout
    assert os.access(script, os.X_OK)


@pytest.mark.parametrize(
    "dockerfile",
    sorted(ROOT.glob("templates/**/Dockerfile")),
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_every_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    done = subprocess.run([tool("hadolint"), str(dockerfile)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_every_dockerfile_pins_its_base_image_and_starts_an_onstart_script() -> None:
    dockerfiles = sorted(ROOT.glob("templates/**/Dockerfile"))
    assert [str(path.relative_to(ROOT)) for path in dockerfiles] == [
        "templates/cpu/Dockerfile",
        "templates/tgi/Dockerfile",
    ]
    for dockerfile in dockerfiles:
        text = dockerfile.read_text()
        [base] = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
        assert ":" in base
        assert "latest" not in base
        onstart = f"templates/{dockerfile.parent.name}/onstart.sh"
        assert f'ENTRYPOINT ["/opt/tgi-serverless/src/{onstart}"]' in text
        assert (ROOT / onstart).exists()
    tgi = (ROOT / "templates/tgi/Dockerfile").read_text()
    assert "FROM ghcr.io/huggingface/text-generation-inference:3.3.7" in tgi
