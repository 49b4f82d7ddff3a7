"""Reading a request body into a JSON document or a `GenerateRequest`, with TGI's body errors.

`read_json` and `read_generate_request` read an aiohttp request's body (413 past the payload
limit); the functions they call are pure. The checks run in the order axum runs them: content
type (415), JSON syntax (400), then the shape and types of the fields (422). Integers must fit
the Rust type TGI declares (`u32` for `max_new_tokens`, `u64` for `seed`, ...). Unlike axum,
whose body errors are plain text, every error here is TGI's JSON `{"error", "error_type"}`, so
clients can always call `.json()`.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic
from aiohttp import web

from protocol.tgi import GenerateParameters, GenerateRequest
from tgi_server.errors import (
    InvalidBodyError,
    MalformedBodyError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)

__all__ = [
    "generate_request_from",
    "is_json_content_type",
    "load_json_body",
    "parse_generate_request",
    "read_generate_request",
    "read_json",
    "stream_flag",
]

_U32 = (0, 2**32 - 1)
_U64 = (0, 2**64 - 1)
_I32 = (-(2**31), 2**31 - 1)
_INTEGER_TYPES: dict[str, tuple[tuple[int, int], str]] = {
    "best_of": (_U64, "usize"),
    "max_new_tokens": (_U32, "u32"),
    "seed": (_U64, "u64"),
    "top_k": (_I32, "i32"),
    "top_n_tokens": (_U32, "u32"),
    "truncate": (_U64, "usize"),
}


async def read_generate_request(request: web.Request) -> GenerateRequest:
    """The `GenerateRequest` in `request`'s body, or the BackendError TGI would answer with."""
    return parse_generate_request(request.headers.get("Content-Type", ""), await _read(request))


async def read_json(request: web.Request) -> Any:
    """The JSON document in `request`'s body, or the BackendError TGI would answer with."""
    return load_json_body(request.headers.get("Content-Type", ""), await _read(request))


async def _read(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLargeError() from exc


def is_json_content_type(content_type: str) -> bool:
    """What axum's JSON extractor accepts: `application/json` or `application/<x>+json`."""
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


def parse_generate_request(content_type: str, body: bytes) -> GenerateRequest:
    """The request in `body`, or the BackendError TGI would answer with."""
    return generate_request_from(load_json_body(content_type, body))


def stream_flag(document: Any) -> bool:
    """The `stream` field of a JSON object body; false when absent; 422 when not a bool."""
    stream = document.get("stream", False) if isinstance(document, dict) else False
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise InvalidBodyError(f"stream: invalid type: {stream!r}, expected a boolean")
    return stream


def load_json_body(content_type: str, body: bytes) -> Any:
    """The JSON document in `body`: 415 when not declared JSON, 400 when not valid JSON."""
    if not is_json_content_type(content_type):
        raise UnsupportedMediaTypeError()
    return _load_json(body)


def generate_request_from(document: Any) -> GenerateRequest:
    """A generate request from a parsed JSON document, with TGI's 422 for a wrong shape."""
    try:
        request = GenerateRequest.model_validate(document)
    except pydantic.ValidationError as exc:
        raise InvalidBodyError(_describe(exc)) from exc
    _check_integer_bounds(request.parameters)
    return request


def _load_json(body: bytes) -> Any:
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise MalformedBodyError(str(exc)) from exc
    except RecursionError as exc:
        raise MalformedBodyError("recursion limit exceeded") from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _describe(exc: pydantic.ValidationError) -> str:
    error = exc.errors()[0]
    path = ".".join(str(part) for part in error["loc"])
    return f"{path}: {error['msg']}" if path else str(error["msg"])


def _check_integer_bounds(parameters: GenerateParameters) -> None:
    for name, ((low, high), rust_type) in _INTEGER_TYPES.items():
        value = getattr(parameters, name)
        if value is not None and not low <= value <= high:
            raise InvalidBodyError(
                f"parameters.{name}: invalid value: integer `{value}`, expected {rust_type}"
            )
