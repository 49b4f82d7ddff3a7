"""The backend's OpenAPI document, and schemathesis against it: no 5xx, answers that conform."""

from __future__ import annotations

from tests.integration.tgi_server.conftest import BackendClient
from tests.openapi_fuzz import fuzz, served_routes
from tgi_server.http.openapi import OPERATIONS


async def test_the_document_is_served_and_names_every_route_it_documents(
    client: BackendClient,
) -> None:
    document = await (await client.get("/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    served = served_routes(client.app)
    documented = {(op.method, op.path) for op in OPERATIONS}
    assert documented <= served
    assert document["paths"]["/generate"]["post"]["requestBody"]
    assert "GenerateRequest" in document["components"]["schemas"]


async def test_schemathesis_finds_no_server_error(client: BackendClient) -> None:
    document = await (await client.get("/openapi.json")).json()
    base_url = str(client.make_url("")).rstrip("/")
    assert await fuzz(document, base_url, max_examples=5) == []
