"""The backend as a real process: TGI's readiness line, a clean SIGTERM, TGI's start-up errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.processes import children_of, pid_alive
from tests.ports import free_port
from tgi_server.engine.shard.launch import SHARD_PROCESS_NAME
from tgi_server.model.tiny import ensure_tiny_model

pytestmark = pytest.mark.e2e

READY_MARKER = '"message":"Connected","target":"text_generation_router::server"'


def start(args: list[str], cache_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "TGIS_CACHE_DIR": str(cache_dir), "HF_HUB_OFFLINE": "1"}
    env.pop("MODEL_ID", None)
    return subprocess.Popen(
        [sys.executable, "-m", "tgi_serverless", "backend", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines_until(stream: Iterator[str], marker: str, deadline_s: float) -> list[str]:
    seen: list[str] = []
    end = time.monotonic() + deadline_s
    for line in stream:
        seen.append(line)
        if marker in line or time.monotonic() > end:
            break
    return seen


def test_ready_line_health_and_graceful_stop(tgis_cache_dir: Path) -> None:
    port = free_port()
    process = start(["--port", str(port), "--json-output"], tgis_cache_dir)
    try:
        assert process.stdout is not None
        seen = lines_until(process.stdout, READY_MARKER, deadline_s=60)
        assert READY_MARKER in seen[-1], seen
        assert all(json.loads(line)["timestamp"] for line in seen)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            assert response.status == 200
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0
        assert "graceful shutdown" in output
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_a_model_that_cannot_load_ends_with_shard_cannot_start(tmp_path: Path) -> None:
    port = free_port()
    process = start(["--port", str(port), "--model-id", str(tmp_path / "missing")], tmp_path)
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 1
    assert errors.strip().endswith("Error: ShardCannotStart")
    assert "Error when initializing model" in errors


def test_launcher_flags_it_cannot_honour_end_it_at_once_saying_why(tmp_path: Path) -> None:
    """TGI's `--revision` on a local folder and `--quantize` with bitsandbytes on a machine
    without CUDA (or a method transformers does not apply) end the process before anything
    loads, with TGI's argument error naming the flag."""
    folder = tmp_path / "model"
    folder.mkdir()
    quantize = "gptq" if torch_sees_cuda() else "bitsandbytes"
    cases = {
        ("--model-id", str(folder), "--revision", "v1.0"): f"`model_id`({folder}) is a local",
        ("--model-id", "org/model", "--quantize", quantize): f"`quantize`({quantize})",
    }
    for args, reason in cases.items():
        process = start(["--port", str(free_port()), *args], tmp_path)
        output, errors = process.communicate(timeout=60)
        assert process.returncode == 1
        assert errors.startswith('Error: ArgumentValidation("'), errors
        assert reason in errors
        assert "Loading" not in output + errors  # nothing loaded, no shard started


def torch_sees_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def test_a_crashed_shard_ends_the_backend_as_tgi_launcher_does(tgis_cache_dir: Path) -> None:
    port = free_port()
    process = start(["--port", str(port), "--json-output"], tgis_cache_dir)
    try:
        assert process.stdout is not None
        assert READY_MARKER in lines_until(process.stdout, READY_MARKER, deadline_s=60)[-1]
        shards = [pid for pid in children_of(process.pid) if is_shard(pid)]
        assert len(shards) == 1
        # Forked from the backend's process, not a new interpreter: torch is imported once.
        assert command_of(shards[0]) == command_of(process.pid)
        os.kill(shards[0], signal.SIGKILL)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 1
        crash = [json.loads(line) for line in output.splitlines() if "Shard 0 crashed" in line]
        assert crash
        assert crash[-1]["level"] == "ERROR"
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def is_shard(pid: int) -> bool:
    """Whether process `pid` is a model server (forked from the backend's process, it has the
    backend's command line and the shard's name)."""
    return Path(f"/proc/{pid}/comm").read_text().strip() == SHARD_PROCESS_NAME


def command_of(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def test_weights_that_cannot_load_end_with_the_shards_reason(
    tmp_path: Path, tgis_cache_dir: Path
) -> None:
    """The HTTP server loads the tokenizer and config; the shard then fails on the weights."""
    tiny = ensure_tiny_model(tgis_cache_dir)
    broken = tmp_path / "no-weights"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny / name, broken / name)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    process = start(["--port", str(free_port()), "--model-id", str(broken)], tmp_path)
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 1
    assert errors.strip().endswith("Error: ShardCannotStart")
    assert "Shard 0 failed to start" in errors
    assert "Error when initializing model" in errors  # the shard's own traceback
    assert f"cannot load {broken}" in errors  # and its reason, on the launcher's line


def test_a_shard_still_loading_exits_when_the_backend_is_killed(tmp_path: Path) -> None:
    """The shard ignores SIGTERM and reads nothing while it loads; it must still not outlive
    the backend. Its load is held up by a hub that accepts connections and never answers."""
    silent_hub = socket.create_server(("127.0.0.1", 0))
    hub_port = silent_hub.getsockname()[1]
    env = {
        **os.environ,
        "TGIS_CACHE_DIR": str(tmp_path),
        "HF_ENDPOINT": f"http://127.0.0.1:{hub_port}",
        "HF_HUB_ETAG_TIMEOUT": "120",
        "HF_HUB_DOWNLOAD_TIMEOUT": "120",
        "HF_HOME": str(tmp_path / "hf"),
    }
    env.pop("HF_HUB_OFFLINE", None)
    command = [sys.executable, "-m", "tgi_serverless", "backend", "--port", str(free_port())]
    process = subprocess.Popen(
        [*command, "--model-id", "tgis-tests/never-answers"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Forked once the backend has imported torch and transformers (tens of seconds on a
        # loaded machine), then waiting for the hub.
        shard = wait_for_shard(process.pid, limit_s=180)
        time.sleep(3)
        assert pid_alive(shard)
        process.kill()
        process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while pid_alive(shard) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not pid_alive(shard)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        silent_hub.close()


def wait_for_shard(pid: int, limit_s: float) -> int:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        shards = [child for child in children_of(pid) if is_shard(child)]
        if shards:
            return shards[0]
        time.sleep(0.05)
    raise AssertionError("the backend started no shard")
