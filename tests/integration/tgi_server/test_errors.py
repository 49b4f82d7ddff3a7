"""Every error a client can cause is a 4xx with TGI's JSON body; model failures are 424s."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from pytest_aiohttp import AiohttpClient

from tests.integration.tgi_server.conftest import BackendClient, MakeClient
from tgi_server.engine.base import ServedModel
from tgi_server.engine.thread import Engine
from tgi_server.http.app import create_app
from tgi_server.model.codec import HFTextCodec
from tgi_server.model.loading import LoadedModel, eos_token_ids
from tgi_server.model.runner import ModelRunner
from tgi_server.scheduler.sequential import SequentialScheduler
from tgi_server.settings import BackendSettings


async def error_body(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status
    assert response.headers["Content-Type"] == "application/json"
    body: dict[str, Any] = await response.json()
    assert list(body) == ["error", "error_type"]
    return body


@pytest.mark.parametrize("path", ["/generate", "/generate_stream"])
async def test_malformed_json_is_a_400(client: BackendClient, path: str) -> None:
    response = await client.post(path, data=b'{"inputs": ', headers=JSON_HEADERS)
    body = await error_body(response, 400)
    assert body["error_type"] == "bad_request"
    assert body["error"].startswith("Failed to parse the request body as JSON")


async def test_a_body_over_the_payload_limit_is_a_413(client: BackendClient) -> None:
    oversized = json.dumps({"inputs": "a" * 2_000_001}).encode()
    response = await client.post("/generate", data=io.BytesIO(oversized), headers=JSON_HEADERS)
    assert await error_body(response, 413) == {
        "error": "Failed to buffer the request body: length limit exceeded",
        "error_type": "payload_too_large",
    }


async def test_a_body_that_is_not_declared_json_is_a_415(client: BackendClient) -> None:
    response = await client.post(
        "/generate", data=b'{"inputs": "a"}', headers={"Content-Type": "text/plain"}
    )
    assert (await error_body(response, 415))["error_type"] == "unsupported_media_type"


@pytest.mark.parametrize("path", ["/generate", "/generate_stream"])
async def test_wrong_types_are_a_422(client: BackendClient, path: str) -> None:
    response = await client.post(path, json={"inputs": "a", "parameters": {"stop": None}})
    body = await error_body(response, 422)
    assert body["error"].startswith(
        "Failed to deserialize the JSON body into the target type: parameters.stop"
    )


async def test_a_missing_inputs_field_is_a_422(client: BackendClient) -> None:
    response = await client.post("/generate", json={"parameters": {}})
    assert "inputs: Field required" in (await error_body(response, 422))["error"]


async def test_a_broken_rule_is_a_422_with_tgis_message(client: BackendClient) -> None:
    response = await client.post("/generate", json={"inputs": "a", "parameters": {"top_p": 1.0}})
    assert await error_body(response, 422) == {
        "error": "Input validation error: `top_p` must be > 0.0 and < 1.0",
        "error_type": "validation",
    }


async def test_a_prompt_too_long_for_the_context_is_a_422(make_client: MakeClient) -> None:
    client = await make_client(max_input_tokens=8, max_total_tokens=16)
    body = {"inputs": "one two three four five six seven eight nine ten eleven"}
    response = await client.post("/generate", json=body)
    assert (await error_body(response, 422))["error"].startswith(
        "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 16."
    )


async def test_a_prompt_of_half_a_megabyte_is_a_422_not_a_crash(client: BackendClient) -> None:
    body = json.dumps({"inputs": "the keeper " * 50_000}).encode()
    response = await client.post("/generate", data=io.BytesIO(body), headers=JSON_HEADERS)
    assert (await error_body(response, 422))["error"].startswith(
        "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048."
    )
    assert (await client.get("/health")).status == 200


async def test_best_of_beyond_the_maximum_is_a_422(client: BackendClient) -> None:
    body = {"inputs": "a", "parameters": {"best_of": 3, "do_sample": True}}
    response = await client.post("/generate", json=body)
    assert (await error_body(response, 422))["error"] == (
        "Input validation error: `best_of` must be > 0 and <= 2. Given: 3"
    )


async def test_requests_beyond_the_limit_get_an_immediate_429(make_client: MakeClient) -> None:
    client = await make_client(max_concurrent_requests=1)
    body = {"inputs": "a", "parameters": {"max_new_tokens": 1000}}
    async with client.post("/generate_stream", json=body) as holder:
        await holder.content.readuntil(b"\n\n")
        response = await client.post("/generate", json={"inputs": "a"})
        assert await error_body(response, 429) == {
            "error": "Model is overloaded",
            "error_type": "overloaded",
        }


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nowhere", 404), ("GET", "/generate", 405), ("POST", "/health", 405)],
)
async def test_unknown_routes_and_methods_are_json_too(
    client: BackendClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path)
    assert (await error_body(response, status))["error_type"]


class BrokenRunner(ModelRunner):
    """The tiny model, except that every decode step fails."""

    def decode(self, token_id: int, cache: Any) -> torch.Tensor:
        raise RuntimeError("CUDA out of memory (simulated)")


@pytest.fixture
async def broken_client(
    aiohttp_client: AiohttpClient, loaded_model: LoadedModel, tgis_cache_dir: Path
) -> BackendClient:
    codec = HFTextCodec(loaded_model.tokenizer)
    runner = BrokenRunner(loaded_model.model, loaded_model.device)
    eos = eos_token_ids(loaded_model.model, loaded_model.tokenizer)
    engine = Engine(
        SequentialScheduler(runner, codec, eos),
        ServedModel(model_id="tiny-llama", codec=codec, device_type="cpu"),
    )
    settings = BackendSettings(cache_dir=tgis_cache_dir, model_id=None)
    return await aiohttp_client(create_app(settings, engine))


async def test_a_failure_inside_generation_is_a_424(broken_client: BackendClient) -> None:
    body = {"inputs": "a", "parameters": {"max_new_tokens": 5}}
    response = await broken_client.post("/generate", json=body)
    assert await error_body(response, 424) == {
        "error": "Request failed during generation: Server error: CUDA out of memory (simulated)",
        "error_type": "generation",
    }
    stream = await broken_client.post("/generate_stream", json=body)
    raw = await stream.read()
    assert stream.status == 200
    assert raw.startswith(b'data: {"index":1,')  # the prefill token went out first
    last = json.loads(raw.rstrip(b"\n").split(b"\n\n")[-1].removeprefix(b"data: "))
    assert last["error_type"] == "generation"
    health = await broken_client.get("/health")
    assert health.status == 200


JSON_HEADERS = {"Content-Type": "application/json"}
