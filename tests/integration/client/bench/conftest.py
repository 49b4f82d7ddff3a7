"""A paced fake TGI on 127.0.0.1 for each test."""

from __future__ import annotations

import pytest
from pytest_aiohttp import AiohttpServer

from tests.fakes.paced_tgi import PacedTGI


class Served:
    def __init__(self, fake: PacedTGI, url: str) -> None:
        self.fake = fake
        self.url = url


@pytest.fixture
async def paced(aiohttp_server: AiohttpServer) -> Served:
    fake = PacedTGI(ttft=0.03, gap=0.01)
    server = await aiohttp_server(fake.app(), host="127.0.0.1")
    return Served(fake, str(server.make_url("")).rstrip("/"))
