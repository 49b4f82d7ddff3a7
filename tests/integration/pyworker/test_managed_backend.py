"""`ManagedBackend` with a small shell script as its backend, its clock and its sleep injected:
what it reports when the backend exits or hangs, the back-off it waits, and that a hung or
cancelled backend is stopped."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from pyworker.backend.launch import LaunchSpec
from pyworker.backend.managed import ManagedBackend
from pyworker.backend.restarts import Backoff
from tests.e2e.processes import pid_alive


class SteppingClock:
    """Each reading is `step` seconds after the one before: time passes as the loop polls."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class Stop(Exception):
    """Raised by the injected sleep to end `run` after the first failure."""


def backend(
    script: str,
    log: Path,
    *,
    argv: tuple[str, ...] = (),
    healthy: bool = False,
    **kwargs: object,
) -> tuple[ManagedBackend, list[str]]:
    """A ManagedBackend running `script` with sh (or `argv`), whose /health answers `healthy`;
    the errors it reports."""
    errors: list[str] = []

    async def answer() -> bool:
        return healthy

    managed = ManagedBackend(
        LaunchSpec(argv or ("sh", "-c", script), "http://127.0.0.1:1"),
        env={"PATH": "/usr/bin:/bin"},
        log_path=log,
        healthy=answer,
        on_error=errors.append,
        poll_s=0.02,
        stop_grace_s=5.0,
        **kwargs,  # type: ignore[arg-type]
    )
    return managed, errors


async def test_a_backend_that_exits_is_reported_with_its_last_line_and_restarted_after_backoff(
    tmp_path: Path,
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            raise Stop

    managed, errors = backend(
        "echo starting; echo 'Error: ShardCannotStart'; exit 3",
        tmp_path / "model.log",
        load_timeout_s=600.0,
        backoff=Backoff(initial_s=2.0, factor=3.0, max_s=60.0),
        sleep=sleep,
    )
    with pytest.raises(Stop):
        await managed.run()
    expected = "backend exited with code 3 (last log line: Error: ShardCannotStart)"
    assert errors == [f"{expected}; restarting in 2s", f"{expected}; restarting in 6s"]
    assert waits == [2.0, 6.0]
    assert managed.starts == 2
    assert (tmp_path / "model.log").read_text().count("starting") == 2  # appended, not replaced


async def test_a_backend_still_loading_after_the_timeout_is_an_error_and_is_stopped(
    tmp_path: Path,
) -> None:
    async def sleep(seconds: float) -> None:
        raise Stop

    managed, errors = backend(
        'echo \'{"level":"INFO","message":"Warming up model"}\'; exec sleep 600',
        tmp_path / "model.log",
        load_timeout_s=30.0,
        clock=SteppingClock(step=5.0),
        sleep=sleep,
    )
    with pytest.raises(Stop):
        await managed.run()
    [error] = errors
    assert error == (
        "backend did not load within 30s (last log line: Warming up model); restarting in 2s"
    )
    assert managed.pid is None


async def test_cancelling_the_supervision_stops_the_backend(tmp_path: Path) -> None:
    managed, errors = backend(
        "exec sleep 600", tmp_path / "model.log", healthy=True, load_timeout_s=1.0
    )  # loaded at once: the watchdog never fires
    task = asyncio.create_task(managed.run())
    for _ in range(200):
        if managed.pid is not None:
            break
        await asyncio.sleep(0.02)
    pid = managed.pid
    assert pid is not None
    await asyncio.sleep(0.2)  # several polls past the load timeout's clock: still serving
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert errors == []
    assert not pid_alive(pid)


async def test_a_launcher_not_installed_is_an_error_that_says_so(tmp_path: Path) -> None:
    async def sleep(seconds: float) -> None:
        raise Stop

    managed, errors = backend(
        "",
        tmp_path / "model.log",
        argv=("text-generation-launcher-absent",),
        load_timeout_s=1.0,
        sleep=sleep,
    )
    with pytest.raises(Stop):
        await managed.run()
    assert errors[0].startswith("cannot start text-generation-launcher-absent: No such file")


async def test_the_worker_app_reports_its_backends_failure_as_its_error(tmp_path: Path) -> None:
    from aiohttp import web

    from protocol import WorkerState
    from pyworker.app import create_app
    from pyworker.command import supervised_backend
    from pyworker.settings import WorkerSettings
    from pyworker.state import LIFECYCLE

    settings = WorkerSettings(
        unsecured=True,
        worker_id="managed-1",
        report_addr="http://127.0.0.1:9",
        backend_url="http://127.0.0.1:9",
        model_log=str(tmp_path / "model.log"),
    )
    app = create_app(settings)
    launch = LaunchSpec(("sh", "-c", "echo 'Error: DownloadError'; exit 4"), settings.backend_url)
    app.cleanup_ctx.append(
        lambda app: supervised_backend(app, launch, {"PATH": "/usr/bin:/bin"}, load_timeout_s=60)
    )
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        lifecycle = app[LIFECYCLE]
        for _ in range(250):
            if "exited" in lifecycle.error_msg:
                break
            await asyncio.sleep(0.02)
        assert lifecycle.state is WorkerState.ERROR
        assert lifecycle.error_msg.startswith(
            "backend exited with code 4 (last log line: Error: DownloadError); restarting in"
        )
    finally:
        await runner.cleanup()
