"""JSON request bodies, read and checked in one place for every route of the router.

What is not JSON is a 400 (BadRequest); JSON of the wrong shape or with a bad field is a 422
(InvalidRequest) whose message names the field: the client always learns what to change.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from router.errors import BadRequest, InvalidRequest

__all__ = [
    "describe_validation",
    "json_object",
    "parse_json",
    "parse_model",
    "read_json",
    "read_json_object",
]

ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:  # slower, and lenient where it should be: NaN, Infinity, 1e999 reach validation (422)
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


async def read_json(request: web.Request) -> Any:
    return parse_json(await request.read())


def json_object(body: Any, example: str = "") -> dict[str, Any]:
    """`body` if it is a JSON object; else a 422 (`example`: what one should look like)."""
    if not isinstance(body, dict):
        raise InvalidRequest(f"request body must be a JSON object{example}")
    return body


async def read_json_object(request: web.Request, example: str = "") -> dict[str, Any]:
    return json_object(await read_json(request), example)


def parse_model(model: type[ModelT], body: Any) -> ModelT:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation(exc)) from None


def describe_validation(exc: ValidationError) -> str:
    """One `field: problem` per problem, `;`-separated."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(f"{where}: {str(error['msg']).removeprefix('Value error, ')}")
    return "; ".join(problems)
