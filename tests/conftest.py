"""Fixtures shared by every tier."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from blockbuster import blockbuster_ctx


@pytest.fixture(scope="session")
def tgis_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this test session builds and caches the built-in tiny model (once)."""
    override = os.environ.get("TGIS_TEST_CACHE_DIR")
    if override:
        return Path(override)
    return tmp_path_factory.mktemp("tgis-cache")


@pytest.fixture(autouse=True)
def _clean_environ() -> Iterator[None]:
    """Tests must not leak environment changes into each other."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


OUR_PACKAGES = [
    "protocol",
    "common",
    "router",
    "pyworker",
    "tgi_server",
    "client",
    "tgi_serverless",
]


@pytest.fixture(autouse=True)
def _no_blocking_calls_in_the_event_loop() -> Iterator[None]:
    """Fail any test in which our code makes a blocking call (file or socket I/O, `time.sleep`,
    a lock wait, ...) on a thread that runs an event loop, as aiohttp's own suite does: such a
    call stalls every other request of that loop. Blocking work belongs in `asyncio.to_thread`.

    Calls are checked only when our packages are on the stack, so the test's own blocking set-up
    outside them is not. The allowances, each a documented choice:
    - a multiprocessing lock's finalizer, which the garbage collector may run anywhere, tells
      the resource tracker with one small pipe write;
    - `ReqnumHighWater._catch_up` (router/keys/reqnums.py) waits for, or makes, the write of
      the next reqnum ceiling when tickets have used up the stored one: never a number beyond
      what is on disk. With the default block that takes 50,000 tickets during one ~10 ms
      write; the tests reach it with blocks of 4."""
    with blockbuster_ctx(OUR_PACKAGES) as blockbuster:
        blockbuster.functions["os.write"].can_block_in("multiprocessing/synchronize.py", "_cleanup")
        for function in blockbuster.functions.values():
            function.can_block_in("router/keys/reqnums.py", "_catch_up")
        yield
