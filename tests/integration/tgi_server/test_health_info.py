"""GET /health and GET /info."""

from __future__ import annotations

from protocol.tgi import Info
from tests.integration.tgi_server.conftest import BackendClient, MakeClient
from tgi_server.http.app_keys import ENGINE_KEY

INFO_FIELDS = [
    "model_id",
    "model_sha",
    "model_pipeline_tag",
    "max_concurrent_requests",
    "max_best_of",
    "max_stop_sequences",
    "max_input_tokens",
    "max_total_tokens",
    "validation_workers",
    "max_client_batch_size",
    "router",
    "version",
    "sha",
    "docker_label",
]


async def test_health_is_an_empty_200(client: BackendClient) -> None:
    response = await client.get("/health")
    assert response.status == 200
    assert await response.read() == b""


async def test_health_is_a_503_once_the_engine_has_stopped(client: BackendClient) -> None:
    await client.app[ENGINE_KEY].stop()
    response = await client.get("/health")
    assert response.status == 503
    assert await response.json() == {"error": "unhealthy", "error_type": "healthcheck"}


async def test_info_has_tgis_3x_fields_with_our_values(make_client: MakeClient) -> None:
    client = await make_client(max_input_tokens=100, max_total_tokens=300, max_best_of=3)
    response = await client.get("/info")
    assert response.status == 200
    body = await response.json()
    assert list(body) == INFO_FIELDS
    info = Info.model_validate(body)
    assert info.model_id == "tiny-llama"
    assert body["router"] == "tgi-serverless"  # TGI: "text-generation-router"; see backend.md
    assert info.model_pipeline_tag == "text-generation"
    assert (info.max_input_tokens, info.max_total_tokens) == (100, 300)
    assert (info.max_concurrent_requests, info.max_best_of, info.max_stop_sequences) == (128, 3, 4)
