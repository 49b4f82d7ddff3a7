"""The backend with its model in a shard process (the default of `tgi-serverless backend`):
the same answers as the in-process engine, and a shard that dies or cannot load says so."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from pytest_aiohttp import AiohttpClient

from protocol.sse import SSEParser
from tests.integration.tgi_server.conftest import BackendClient, MakeClient
from tgi_server.engine.base import ServedModel
from tgi_server.engine.shard.engine import ShardEngine
from tgi_server.engine.shard.launch import ShardFailedError, launch_shard
from tgi_server.http.app import create_app
from tgi_server.http.app_keys import ENGINE_KEY
from tgi_server.model.codec import HFTextCodec
from tgi_server.model.loading import grammar_compiler, load_tokenizer
from tgi_server.settings import BackendSettings

PROMPT = "The keeper climbed the stairs of the lighthouse and"


def shard_settings(cache_dir: Path, **overrides: Any) -> BackendSettings:
    return BackendSettings(**{"cache_dir": cache_dir, "model_id": None, "port": 5001, **overrides})


@pytest.fixture
def make_shard_client(
    aiohttp_client: AiohttpClient, tgis_cache_dir: Path
) -> Callable[[], Awaitable[BackendClient]]:
    async def make() -> BackendClient:
        settings = shard_settings(tgis_cache_dir)
        tokenizer = await asyncio.to_thread(load_tokenizer, settings)
        shard = await asyncio.to_thread(launch_shard, settings)
        model = ServedModel(
            model_id=tokenizer.model_id,
            codec=HFTextCodec(tokenizer.tokenizer),
            device_type=shard.device_type,
            grammar=await asyncio.to_thread(grammar_compiler, tokenizer.tokenizer),
        )
        app = create_app(settings, ShardEngine(shard, model))
        return await aiohttp_client(app, server_kwargs={"handler_cancellation": True})

    return make


def shard_engine_of(client: BackendClient) -> ShardEngine:
    assert client.app is not None
    engine = client.app[ENGINE_KEY]
    assert isinstance(engine, ShardEngine)
    return engine


async def generate(client: BackendClient, **parameters: Any) -> dict[str, Any]:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 12, "details": True, **parameters}}
    response = await client.post("/generate", json=body)
    assert response.status == 200, await response.text()
    payload: dict[str, Any] = await response.json()
    return payload


async def stream_texts(client: BackendClient, **parameters: Any) -> list[str]:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 12, **parameters}}
    response = await client.post("/generate_stream", json=body)
    parser = SSEParser()
    events = parser.feed(await response.read())
    return [event.data for event in events]


async def test_the_shard_answers_as_the_in_process_engine_does(
    make_shard_client: Callable[[], Awaitable[BackendClient]], make_client: MakeClient
) -> None:
    sharded, threaded = await make_shard_client(), await make_client()
    for parameters in (
        {},
        {"stop": [" the"]},
        {"do_sample": True, "seed": 11, "top_n_tokens": 2},
        {"grammar": {"type": "regex", "value": "[0-9]{2}-[a-c]{3}"}},
    ):
        ours, reference = (
            await generate(sharded, **parameters),
            await generate(threaded, **parameters),
        )
        assert ours["generated_text"] == reference["generated_text"], parameters
        assert [t["id"] for t in ours["details"]["tokens"]] == [
            t["id"] for t in reference["details"]["tokens"]
        ]
        assert ours["details"]["finish_reason"] == reference["details"]["finish_reason"]
    assert re.fullmatch("[0-9]{2}-[a-c]{3}", ours["generated_text"])
    assert await stream_texts(sharded) == await stream_texts(threaded)
    assert sharded.app is not None
    stats = sharded.app[ENGINE_KEY].stats
    assert stats.completed == 5
    assert stats.forwards["prefill"] == 5


@pytest.mark.parametrize("engine", ["shard", "thread"])
async def test_many_streams_at_once_each_get_their_own_tokens(
    engine: str,
    make_shard_client: Callable[[], Awaitable[BackendClient]],
    make_client: MakeClient,
) -> None:
    client = await (make_shard_client() if engine == "shard" else make_client())
    alone = tokens(await stream_texts(client, max_new_tokens=20))
    together = await asyncio.gather(*(stream_texts(client, max_new_tokens=20) for _ in range(16)))
    for events in together:  # the same tokens (logprobs may differ in the last digits)
        assert tokens(events) == alone


def tokens(events: list[str]) -> list[tuple[int, str]]:
    return [(json.loads(data)["token"]["id"], json.loads(data)["token"]["text"]) for data in events]


LONG = {"inputs": PROMPT, "parameters": {"max_new_tokens": 1000}}


async def start_long_stream(client: BackendClient) -> ClientResponse:
    """A stream of `LONG`'s 1000 tokens, once its first token is out: the shard is generating."""
    response = await client.post("/generate_stream", json=LONG)
    await response.content.readline()
    return response


async def test_clients_that_leave_mid_stream_leave_nothing_behind(
    make_shard_client: Callable[[], Awaitable[BackendClient]],
) -> None:
    client = await make_shard_client()
    engine = shard_engine_of(client)

    async def leave_after_first_token() -> None:
        (await start_long_stream(client)).close()

    await asyncio.gather(*(leave_after_first_token() for _ in range(8)))
    for _ in range(100):  # bounded: the shard drops them at its next step
        if engine.in_flight == 0 and engine.stats.cancelled == 8 and engine.stats.batch_size == 0:
            break
        await asyncio.sleep(0.05)
    assert engine.in_flight == 0
    assert engine.stats.cancelled == 8
    assert engine.stats.batch_size == 0
    assert len(await stream_texts(client)) == 12  # and the next request is served in full


async def test_a_killed_shard_fails_its_streams_and_the_health_check(
    make_shard_client: Callable[[], Awaitable[BackendClient]],
) -> None:
    client = await make_shard_client()
    engine = shard_engine_of(client)
    response = await start_long_stream(client)
    pid = engine._shard.process.pid
    os.kill(pid, signal.SIGKILL)
    rest = SSEParser().feed(await asyncio.wait_for(response.read(), 30))
    assert '"error_type":"generation"' in rest[-1].data
    assert "the model server exited" in rest[-1].data
    await asyncio.wait_for(engine.failed.wait(), 10)
    health = await client.get("/health")
    assert health.status == 503
    again = await client.post("/generate", json=LONG)
    assert again.status == 424
    assert "not running" in (await again.json())["error"]


def test_a_shard_that_cannot_load_the_model_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    empty = tmp_path / "no-weights"
    empty.mkdir()
    with pytest.raises(ShardFailedError, match="no-weights"):
        launch_shard(shard_settings(tmp_path, model_id=str(empty)))
