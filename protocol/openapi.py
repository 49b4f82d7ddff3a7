"""OpenAPI 3.1 documents built from a route table and the pydantic models the handlers use.

Each service (router, PyWorker, backend) keeps one table of `Operation`s next to its routes and
publishes `openapi_document(...)` at `GET /openapi.json`. The schemas come from the models'
`model_json_schema()`, never from a second, hand-written copy; a model's nested definitions
(`$defs`) become `components/schemas`. Every operation also answers errors with the one error
body of the contract (`protocol.errors.ErrorBody`), documented as its `default` response.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from protocol.errors import ErrorBody

__all__ = ["OPENAPI_PATH", "Answer", "Operation", "openapi_document"]

OPENAPI_PATH = "/openapi.json"

Method = Literal["get", "post", "put", "patch", "delete"]

_REF_TEMPLATE = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Answer:
    """One documented success answer: its media types (none: an empty body) and the model of
    its JSON body (None: the body is not described, e.g. a stream or Prometheus text)."""

    description: str
    model: type[BaseModel] | None = None
    media_types: tuple[str, ...] = ("application/json",)


@dataclass(frozen=True)
class Operation:
    """One route: `path` in OpenAPI's template form (`/api/v0/endpoints/{name}`); `body` the
    model of its JSON request body; `answers` its success answers by status; `security` the
    names of the security schemes that may authorize it (empty: open to every client)."""

    method: Method
    path: str
    summary: str
    answers: Mapping[int, Answer]
    body: type[BaseModel] | None = None
    security: tuple[str, ...] = ()
    path_parameters: tuple[str, ...] = field(default=())


def openapi_document(
    title: str,
    version: str,
    operations: Iterable[Operation],
    *,
    security_schemes: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for `operations`, in the order given."""
    schemas: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        paths.setdefault(operation.path, {})[operation.method] = _operation(operation, schemas)
    components: dict[str, Any] = {"schemas": schemas}
    if security_schemes:
        components["securitySchemes"] = dict(security_schemes)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": components,
    }


def _operation(operation: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(status): _answer(answer, schemas) for status, answer in operation.answers.items()
    }
    responses["default"] = {
        "description": "an error, as the error contract's JSON body",
        "content": {"application/json": {"schema": _schema_ref(ErrorBody, schemas)}},
    }
    document: dict[str, Any] = {"summary": operation.summary, "responses": responses}
    if operation.path_parameters:
        document["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in operation.path_parameters
        ]
    if operation.body is not None:
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema_ref(operation.body, schemas)}},
        }
    if operation.security:
        document["security"] = [{name: []} for name in operation.security]
    return document


def _answer(answer: Answer, schemas: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = {media_type: {} for media_type in answer.media_types}
    if answer.model is not None:
        content["application/json"] = {"schema": _schema_ref(answer.model, schemas)}
    if not content:
        return {"description": answer.description}
    return {"description": answer.description, "content": content}


def _schema_ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    """`model`'s schema (and its nested ones) added to `schemas`; a reference to it."""
    schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
    schemas.update(schema.pop("$defs", {}))
    name = model.__name__
    schemas[name] = schema
    return {"$ref": _REF_TEMPLATE.format(model=name)}
