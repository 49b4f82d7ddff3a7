"""The router's OpenAPI document, and schemathesis against it, as a client without keys and
with the admin and API keys: no 5xx, answers that conform."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from protocol import SigningKey
from router.http.app import create_app
from router.http.openapi import OPERATIONS
from tests.integration.router.routers import ClientFactory, router_settings
from tests.openapi_fuzz import fuzz, served_routes

ADMIN_KEY = "the-admin-key"
API_KEY = "the-api-key"


@pytest.fixture
async def client(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient[Any, Any]:
    settings = router_settings(tmp_path, api_key=API_KEY, admin_key=ADMIN_KEY)
    return await aiohttp_client(create_app(settings, signing_key=SigningKey.generate()))


async def _document(client: TestClient[Any, Any]) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status == 200
    document: dict[str, Any] = await response.json()
    return document


async def test_the_document_names_only_routes_the_router_serves(
    client: TestClient[Any, Any],
) -> None:
    document = await _document(client)
    served = served_routes(client.app)
    assert {(op.method, op.path) for op in OPERATIONS} <= served
    assert document["paths"]["/status"]["get"]["security"] == [{"adminKey": []}]
    assert "WorkerStatusReport" in document["components"]["schemas"]


@pytest.mark.parametrize("key", [None, ADMIN_KEY, API_KEY], ids=["no key", "admin key", "API key"])
async def test_schemathesis_finds_no_server_error(
    client: TestClient[Any, Any], key: str | None
) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    base_url = str(client.make_url("")).rstrip("/")
    failures = await fuzz(await _document(client), base_url, headers=headers, max_examples=5)
    assert failures == []
