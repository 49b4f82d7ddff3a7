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
