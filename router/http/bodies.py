"""JSON request bodies, read and checked in one place for every route of the router.

What is not JSON is a 400 (BadRequest); JSON of the wrong shape or with a bad field is a 422
(InvalidRequest) whose message names the field: the client always learns what to change.

`route_args` reads `/route/`'s body: the common, well-formed body is checked field by field in
plain Python (a fraction of a pydantic model's cost on the router's hottest path); anything else
goes through `RouteRequest` itself, which accepts or names the problem exactly as before.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from protocol import MAX_COST, RouteRequest
from router.errors import BadRequest, InvalidRequest

__all__ = [
    "RouteArgs",
    "describe_validation",
    "json_object",
    "parse_json",
    "parse_model",
    "read_json",
    "read_json_object",
    "route_args",
]

ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:  # slower, and lenient where it should be: NaN, Infinity, 1e999 reach validation (422)
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if b"\\u" in raw and _has_lone_surrogate(body):  # orjson refuses these; json does not
        raise BadRequest(
            "request body is not valid JSON: a string holds a lone surrogate escape "
            "(\\ud800-\\udfff without its pair); send valid Unicode"
        )
    return body


def _has_lone_surrogate(body: Any) -> bool:
    """True when a string (key or value) anywhere in `body` cannot be encoded as UTF-8: such
    text would crash every later step that encodes it (key checks, relaying, signing)."""
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


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


class RouteArgs(NamedTuple):
    """A valid `/route/` body (the fields of `RouteRequest`)."""

    endpoint: str
    cost: float
    request_idx: int | None
    api_key: str | None
    avoid: list[str]
    session: str | None


_MAX_TEXT = 256
_MAX_AVOID = 64
_MAX_REQUEST_IDX = 2**63 - 1


def route_args(body: Any) -> RouteArgs:
    """The arguments of a `/route/` body; a 422 naming the field when one is wrong."""
    fast = _well_formed(body)
    if fast is not None:
        return fast
    model = parse_model(RouteRequest, body)
    return RouteArgs(
        model.endpoint, model.cost, model.request_idx, model.api_key, model.avoid, model.session
    )


def _well_formed(body: Any) -> RouteArgs | None:
    """The same result as `RouteRequest` for a body every field of which is plainly right;
    None for anything else (the model then decides, and words any error)."""
    if type(body) is not dict:
        return None
    endpoint = body.get("endpoint")
    if type(endpoint) is not str or not 0 < len(endpoint) <= _MAX_TEXT:
        return None
    cost = body.get("cost", 100.0)
    if (type(cost) is not int and type(cost) is not float) or not 0 < cost <= MAX_COST:
        return None  # NaN and infinities fail the range; bool is neither int nor float by type
    cost = float(cost)
    request_idx = body.get("request_idx")
    if request_idx is not None and (
        type(request_idx) is not int or not 0 <= request_idx <= _MAX_REQUEST_IDX
    ):
        return None
    api_key = body.get("api_key")
    if api_key is not None and type(api_key) is not str:
        return None
    avoid = body.get("avoid", [])
    if type(avoid) is not list or len(avoid) > _MAX_AVOID:
        return None
    for url in avoid:
        if type(url) is not str:
            return None
    session = body.get("session")
    if session is not None and (type(session) is not str or not 0 < len(session) <= _MAX_TEXT):
        return None
    return RouteArgs(endpoint, cost, request_idx, api_key, avoid, session)
