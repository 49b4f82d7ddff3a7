"""Fixtures shared by every tier."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from blockbuster import BlockingError, blockbuster_ctx

pytest_plugins = ["tests.redis_server"]  # the `redis_server` fixture: a real redis-server


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
    "httpedge",
    "router",
    "pyworker",
    "tgi_server",
    "client",
    "tgi_serverless",
]


CATCH_UP_BLOCKS_ON = (
    "threading.Lock.acquire",  # waiting for the ceiling's write in flight
    "threading.Lock.acquire_lock",
    "io.BufferedWriter.write",  # or writing it now (router.state_files.write_private)
    "os.replace",
    "os.unlink",
)


@pytest.fixture(autouse=True)
def _no_blocking_calls_in_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any test in which our code makes a blocking call (file or socket I/O, `time.sleep`,
    a lock wait, ...) on a thread that runs an event loop, as aiohttp's own suite does: such a
    call stalls every other request of that loop. Blocking work belongs in `asyncio.to_thread`.

    Calls are checked only when our packages are on the stack, so the test's own blocking set-up
    outside them is not. blockbuster raises a `BlockingError` at the call, which our code may
    catch on its way (an error middleware turns it into a 500, an engine into a failed
    request): so every one raised is also recorded, and the test fails at its end if there was
    any, whatever became of the exception. The allowances, each a documented choice:
    - a multiprocessing lock's finalizer, which the garbage collector may run anywhere, tells
      the resource tracker with one small pipe write;
    - a log record written to a stream or file by logging's handlers: every aiohttp service
      logs from its loop so, and a log line is one small write;
    - `ReqnumHighWater._catch_up` (router/keys/reqnums.py) waits for, or makes, the write of
      the next reqnum ceiling when tickets have used up the stored one: never a number beyond
      what is on disk. With the default block that takes 50,000 tickets during one ~10 ms
      write; the tests reach it with blocks of 4. Only the calls that wait or write;
    - `api_configuration` (router/cli/kubernetes.py) reads the kubeconfig or the service
      account's files once, before the router serves, on an event loop of its own (the
      kubeconfig loader is a coroutine): no request waits on it."""
    raised: list[str] = []
    error_init = BlockingError.__init__

    def recorded(self: BlockingError, func_name: str) -> None:
        raised.append(func_name)
        error_init(self, func_name)

    monkeypatch.setattr(BlockingError, "__init__", recorded)
    with blockbuster_ctx(OUR_PACKAGES) as blockbuster:
        blockbuster.functions["os.write"].can_block_in("multiprocessing/synchronize.py", "_cleanup")
        for name in ("io.TextIOWrapper.write", "io.BufferedWriter.write"):
            blockbuster.functions[name].can_block_in("logging/__init__.py", {"emit", "flush"})
        for name in CATCH_UP_BLOCKS_ON:
            blockbuster.functions[name].can_block_in("router/keys/reqnums.py", "_catch_up")
        for function in blockbuster.functions.values():
            function.can_block_in("router/cli/kubernetes.py", "api_configuration")
        yield
    assert not raised, f"blocking calls in an event loop: {raised}"
