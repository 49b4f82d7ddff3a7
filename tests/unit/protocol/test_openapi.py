"""`protocol.openapi`: a document built from a route table and the handlers' models."""

from __future__ import annotations

from typing import Any

from protocol import ErrorBody, GenerateRequest
from protocol.openapi import Answer, Operation, openapi_document

GENERATE = Operation(
    "post", "/generate", "generate", {200: Answer("text", GenerateRequest)}, GenerateRequest
)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_models_and_their_nested_models_become_components_every_reference_resolves() -> None:
    document = openapi_document("t", "1", [GENERATE])
    schemas = document["components"]["schemas"]
    own = GenerateRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    nested = own.pop("$defs")
    assert schemas["GenerateRequest"] == own
    assert {name: schemas[name] for name in nested} == nested
    names = {ref.removeprefix("#/components/schemas/") for ref in _refs(document)}
    assert names <= set(schemas)


def test_every_operation_documents_the_error_body_as_its_default_answer() -> None:
    operation = openapi_document("t", "1", [GENERATE])["paths"]["/generate"]["post"]
    default = operation["responses"]["default"]["content"]["application/json"]["schema"]
    assert default == {"$ref": "#/components/schemas/ErrorBody"}
    assert operation["requestBody"]["required"] is True
    assert "security" not in operation


def test_security_path_parameters_and_an_empty_answer() -> None:
    item = Operation(
        "get",
        "/items/{name}",
        "one item",
        {204: Answer("nothing", media_types=())},
        security=("adminKey",),
        path_parameters=("name",),
    )
    schemes = {"adminKey": {"type": "http", "scheme": "bearer"}}
    document = openapi_document("t", "1", [item], security_schemes=schemes)
    operation = document["paths"]["/items/{name}"]["get"]
    assert operation["security"] == [{"adminKey": []}]
    assert operation["parameters"][0]["name"] == "name"
    assert operation["responses"]["204"] == {"description": "nothing"}
    assert document["components"]["securitySchemes"] == schemes
    assert document["components"]["schemas"]["ErrorBody"] == ErrorBody.model_json_schema()
