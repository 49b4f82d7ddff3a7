"""Fixtures for the backend's integration tests: the real tiny model behind an in-process app."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from tgi_server.http.app import create_app
from tgi_server.model.loading import LoadedModel, build_engine, load_model
from tgi_server.settings import BackendSettings

BackendClient = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[BackendClient]]


@pytest.fixture(scope="session")
def loaded_model(tgis_cache_dir: Path) -> LoadedModel:
    return load_model(BackendSettings(cache_dir=tgis_cache_dir, model_id=None))


@pytest.fixture
def make_client(
    aiohttp_client: AiohttpClient, loaded_model: LoadedModel, tgis_cache_dir: Path
) -> MakeClient:
    """A client of a fresh backend (its own engine) with the given settings."""

    async def make(**settings: Any) -> BackendClient:
        defaults: dict[str, Any] = {"cache_dir": tgis_cache_dir, "model_id": None, "port": 5001}
        app = create_app(BackendSettings(**{**defaults, **settings}), build_engine(loaded_model))
        return await aiohttp_client(app, server_kwargs={"handler_cancellation": True})

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> BackendClient:
    return await make_client()


async def eventually(condition: Callable[[], bool], within_s: float = 10.0) -> None:
    for _ in range(int(within_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never became true")


async def metric_lines(client: BackendClient) -> list[str]:
    return (await (await client.get("/metrics")).text()).splitlines()
