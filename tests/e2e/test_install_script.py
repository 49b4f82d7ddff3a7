"""templates/install.sh in a fresh virtual environment, as CI and the images run it.

`--worker-only` (the TGI image's install: the PyWorker without torch) runs in every suite, in
about 30 s here, offline where pip's configuration names local (file://) indexes: only those
are used then. The full install (torch and transformers too, the CPU image's) takes minutes and
needs pip's usual indexes: it runs when TGIS_TEST_FULL_INSTALL=1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.processes import REPO_ROOT
from tgi_serverless import __version__

pytestmark = pytest.mark.e2e

INSTALL = REPO_ROOT / "templates" / "install.sh"


def local_indexes_only() -> dict[str, str]:
    """pip's variables that keep it to this machine's file:// indexes, when its configuration
    names some (else nothing: pip's own configuration decides)."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.extra-index-url"],
        capture_output=True,
        text=True,
        check=False,
    )
    local = [url for url in done.stdout.split() if url.startswith("file://")]
    if not local:
        return {}
    return {"PIP_INDEX_URL": local[0], "PIP_EXTRA_INDEX_URL": " ".join(local[1:])}


def install(venv: Path, *flags: str, offline: bool = True) -> subprocess.CompletedProcess[str]:
    """install.sh into `venv`; `offline`: from this machine's local indexes only, if any."""
    local = local_indexes_only() if offline else {}
    env = {**os.environ, **local, "PIP_NO_CACHE_DIR": "1"}
    command = ["bash", str(INSTALL), *flags, str(venv)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)


def runs(venv: Path, code: str) -> bool:
    done = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True)
    return done.returncode == 0


def test_the_worker_only_install_runs_the_worker_without_torch(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    done = install(venv, "--worker-only")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith(__version__)  # `tgi-serverless --version`, its last step
    assert runs(venv, "import pyworker.app, pyworker.backend.managed")
    assert not runs(venv, "import torch")
    assert not runs(venv, "import transformers")
    assert not runs(venv, "import kubernetes_asyncio")  # the router's, with --provider kubernetes
    assert runs(venv, "import router.cli.router")  # which imports it only then
    help_text = subprocess.run(
        [str(venv / "bin" / "tgi-serverless"), "worker", "--help"], capture_output=True, text=True
    )
    assert "--backend tgi|embedded|URL" in help_text.stdout


@pytest.mark.skipif(
    os.environ.get("TGIS_TEST_FULL_INSTALL") != "1", reason="minutes: TGIS_TEST_FULL_INSTALL=1"
)
def test_the_full_install_runs_the_embedded_backend(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    done = install(venv, offline=False)  # outlines-core, say, is in no local index here
    assert done.returncode == 0, done.stderr[-3000:]
    assert runs(venv, "import torch, transformers, tgi_server.server")
