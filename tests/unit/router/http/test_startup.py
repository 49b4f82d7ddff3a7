"""The router's start-up: steps in order, teardowns in reverse, and what each step leaves set."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from protocol import SigningKey
from router.endpoints.models import Endpoint
from router.http.app import create_app
from router.http.startup import Step, load_endpoints, open_key_ring, router_lifetime, run_in_order
from router.http.state import (
    HIGH_WATER,
    KEY_RING,
    METRICS,
    ROTATION,
    SERVICE,
    STORE,
)
from router.keys import rotation
from router.keys.ring import KeyAlg, KeyRing
from router.keys.store import RING_FILE, RSA_KEY_FILE, save_key_ring
from router.routing.backplane import BACKPLANE
from router.settings import RouterSettings


def settings(tmp_path: Path, **fields: Any) -> RouterSettings:
    return RouterSettings(state_dir=tmp_path / "state", **fields)


def recording(name: str, log: list[str], *, fails: bool = False) -> Step:
    @contextlib.asynccontextmanager
    async def step(app: web.Application) -> AsyncIterator[None]:
        log.append(f"start {name}")
        if fails:
            raise RuntimeError(f"{name} failed")
        try:
            yield
        finally:
            log.append(f"stop {name}")

    return step


# -- the order ---------------------------------------------------------------------------------


async def test_steps_start_in_order_and_stop_in_reverse() -> None:
    log: list[str] = []
    steps = [recording(name, log) for name in ("a", "b", "c")]
    async with run_in_order(steps, web.Application()):
        assert log == ["start a", "start b", "start c"]
    assert log == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]


async def test_a_step_that_fails_stops_those_before_it_and_starts_no_more() -> None:
    log: list[str] = []
    steps = [recording("a", log), recording("b", log), recording("c", log, fails=True)]
    steps.append(recording("d", log))
    with pytest.raises(RuntimeError, match="c failed"):
        async with run_in_order(steps, web.Application()):
            pytest.fail("the body runs only once every step has started")
    assert log == ["start a", "start b", "start c", "stop b", "stop a"]


async def test_the_router_starts_logs_and_stops_its_rotation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings(tmp_path, key_rotation_s=3600))
    lifetime, before = router_lifetime(app), asyncio.all_tasks()
    with caplog.at_level(logging.INFO, logger="router.http.startup"):
        await anext(lifetime)
    started = asyncio.all_tasks() - before  # the periodic rotation, and the unsaved-store retry
    tasks = {task.get_coro().__name__: task for task in started}  # type: ignore[union-attr]
    assert set(tasks) == {"run_every", "_store_when_possible"}
    rotating = tasks["run_every"]
    for key in (STORE, KEY_RING, ROTATION, HIGH_WATER, SERVICE, BACKPLANE, METRICS):
        assert key in app, key
    assert app[SERVICE].issuer.ring is app[KEY_RING]
    kid = app[KEY_RING].keys[0].kid
    assert caplog.messages == [f"router_started endpoints=1 scheme=ed25519 kid={kid}"]
    assert not rotating.done()
    await anext(lifetime, None)
    assert all(task.cancelled() for task in started)


async def test_a_rotation_under_way_is_written_before_the_router_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writing, written = asyncio.Event(), []
    loop = asyncio.get_running_loop()

    def slow_save(state_dir: Path, ring: KeyRing) -> None:
        loop.call_soon_threadsafe(writing.set)
        time.sleep(0.3)  # in the rotation's thread
        save_key_ring(state_dir, ring)
        written.append(ring.keys[-1].kid)

    monkeypatch.setattr(rotation, "save_key_ring", slow_save)
    app = create_app(settings(tmp_path))
    lifetime = router_lifetime(app)
    await anext(lifetime)
    asked = asyncio.create_task(app[ROTATION].rotate())
    await writing.wait()
    asked.cancel()  # the admin's client went away; the router is stopping
    await anext(lifetime, None)
    assert len(written) == 1  # landed before the teardown ended
    assert written[0] in {key.kid for key in app[KEY_RING].keys}


# -- the steps ---------------------------------------------------------------------------------


async def test_the_settings_endpoint_is_created_with_the_settings_key(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, api_key="the-key"), clock=lambda: 42.0)
    async with load_endpoints(app):
        pass
    endpoint = app[STORE].endpoints["default"]
    assert endpoint.api_key.get_secret_value() == "the-key"
    assert endpoint.created_at == 42.0
    assert (tmp_path / "state" / "endpoints.json").exists()


async def test_the_settings_key_replaces_a_stored_one(tmp_path: Path) -> None:
    await stored_endpoint(tmp_path, api_key="old-key")
    app = create_app(settings(tmp_path, api_key="new-key"))
    async with load_endpoints(app):
        pass
    assert app[STORE].endpoints["default"].api_key.get_secret_value() == "new-key"
    assert app[STORE].endpoints["default"].created_at == 1.0
    reloaded = create_app(settings(tmp_path))
    async with load_endpoints(reloaded):
        pass
    assert reloaded[STORE].endpoints["default"].api_key.get_secret_value() == "new-key"


async def test_without_a_settings_key_the_stored_endpoint_is_left_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await stored_endpoint(tmp_path, api_key="stored-key")
    app = create_app(settings(tmp_path))
    saves: list[None] = []

    async def counted_save() -> None:
        saves.append(None)

    monkeypatch.setattr(app[STORE], "save", counted_save)
    async with load_endpoints(app):
        pass
    assert app[STORE].endpoints["default"].api_key.get_secret_value() == "stored-key"
    assert saves == []


async def stored_endpoint(tmp_path: Path, *, api_key: str) -> None:
    app = create_app(settings(tmp_path))
    store = app[STORE]
    store.put_endpoint(Endpoint(name="default", api_key=api_key, created_at=1.0))
    await store.save()


async def test_a_signing_key_given_to_create_app_is_the_ring(tmp_path: Path) -> None:
    key = SigningKey.generate()
    app = create_app(settings(tmp_path), signing_key=key)
    async with open_key_ring(app):
        pass
    assert [k.kid for k in app[KEY_RING].keys] == [key.kid]
    assert not (tmp_path / "state").exists()  # nothing read or created on disk


async def test_the_ring_is_created_with_the_schemes_kind_of_key(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, ticket_scheme="vast"))
    async with open_key_ring(app):
        pass
    [key] = app[KEY_RING].keys
    assert key.alg is KeyAlg.RSA
    assert (tmp_path / "state" / RSA_KEY_FILE).exists()
    assert not (tmp_path / "state" / RING_FILE).exists()  # written by the first rotation
