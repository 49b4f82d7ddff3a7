"""The endpoint store's file: written one change at a time, newest state last."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from router.endpoints import store as endpoint_store
from router.endpoints.models import endpoint_from_body
from router.endpoints.store import ENDPOINTS_FILE, EndpointStore
from router.errors import StateUnwritable
from router.http.startup import _store_when_possible


async def test_a_cancelled_save_finishes_before_the_next_one_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[tuple[str, int]] = []
    release = threading.Event()
    write_json = endpoint_store._write_json

    def slow_write(path: Path, data: dict[str, Any]) -> None:
        writes.append(("start", len(data["endpoints"])))
        release.wait(10)
        write_json(path, data)
        writes.append(("end", len(data["endpoints"])))

    monkeypatch.setattr(endpoint_store, "_write_json", slow_write)
    store = EndpointStore(tmp_path)
    store.put_endpoint(endpoint_from_body({"name": "one"}))
    first = asyncio.create_task(store.save())
    for _ in range(500):
        if writes:
            break
        await asyncio.sleep(0.01)
    first.cancel()  # e.g. the management API's client went away
    store.put_endpoint(endpoint_from_body({"name": "two"}))
    second = asyncio.create_task(store.save())
    await asyncio.sleep(0.05)  # time for a second write to start, were it allowed to
    release.set()
    await second
    assert writes == [("start", 1), ("end", 1), ("start", 2), ("end", 2)]
    stored = json.loads((tmp_path / ENDPOINTS_FILE).read_text())
    assert [endpoint["name"] for endpoint in stored["endpoints"]] == ["one", "two"]


async def test_a_change_a_full_disk_refused_is_written_once_it_has_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_json = endpoint_store._write_json
    full = True

    def write_unless_full(path: Path, data: dict[str, Any]) -> None:
        if full:
            raise StateUnwritable("the router could not store endpoints.json: No space left")
        write_json(path, data)

    monkeypatch.setattr(endpoint_store, "_write_json", write_unless_full)
    store = EndpointStore(tmp_path)
    assert not await store.save_if_unsaved()  # nothing to write
    store.put_endpoint(endpoint_from_body({"name": "one"}))
    with pytest.raises(StateUnwritable):
        await store.save()  # the management API answers 503
    assert store.unsaved
    assert not await store.save_if_unsaved()  # still full: quietly unsaved
    assert store.unsaved
    full = False
    assert await store.save_if_unsaved()
    assert not store.unsaved
    stored = json.loads((tmp_path / ENDPOINTS_FILE).read_text())
    assert [body["name"] for body in stored["endpoints"]] == ["one"]
    assert not await store.save_if_unsaved()


async def test_the_router_retries_an_unsaved_store_by_itself(tmp_path: Path) -> None:
    store = EndpointStore(tmp_path)
    store.put_endpoint(endpoint_from_body({"name": "one"}))
    store.unsaved = True  # as after a refused write
    task = asyncio.create_task(_store_when_possible(store, period_s=0.01))
    try:
        for _ in range(500):
            if (tmp_path / ENDPOINTS_FILE).exists():
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert not store.unsaved
    assert "one" in (tmp_path / ENDPOINTS_FILE).read_text()
