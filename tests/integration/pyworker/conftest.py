"""The PyWorker's integration tests: a stack per test (`tests.integration.pyworker.stack`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.fake_tgi import FakeTGI
from tests.integration.pyworker.stack import ServerFactory, Stack, start_stack


@pytest.fixture
async def stack(aiohttp_server: ServerFactory, tmp_path: Path) -> AsyncIterator[Stack]:
    async for running in start_stack(aiohttp_server, tmp_path, FakeTGI()):
        yield running
