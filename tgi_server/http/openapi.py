"""The backend's OpenAPI document (`GET /openapi.json`): its route table, with the models
its handlers parse and answer with (`protocol.tgi`, `tgi_server.openai.requests`).

Documented: TGI's and OpenAI's generation routes, `/tokenize`, and the metadata routes. The
SageMaker and compat routes (`POST /`, `/invocations`) take any of those bodies and are left out.
"""

from __future__ import annotations

from typing import Any

from protocol.openapi import OPENAPI_PATH, Answer, Operation, openapi_document
from protocol.tgi import GenerateRequest, GenerateResponse, Info
from protocol.version import VERSION
from tgi_server.openai.requests import ChatRequest, CompletionRequest

__all__ = ["OPERATIONS", "backend_openapi"]

_JSON = Answer("the answer, as JSON")
_STREAM = Answer("server-sent events, one per token", media_types=("text/event-stream",))
_JSON_OR_STREAM = Answer(
    "JSON, or with `stream` server-sent events",
    media_types=("application/json", "text/event-stream"),
)
_OK = {200: _JSON}

OPERATIONS = (
    Operation(
        "post",
        "/generate",
        "generate text",
        {200: Answer("the generated text", GenerateResponse)},
        GenerateRequest,
    ),
    Operation("post", "/generate_stream", "generate, streamed", {200: _STREAM}, GenerateRequest),
    Operation(
        "post",
        "/v1/chat/completions",
        "OpenAI chat completions",
        {200: _JSON_OR_STREAM},
        ChatRequest,
    ),
    Operation(
        "post", "/v1/completions", "OpenAI completions", {200: _JSON_OR_STREAM}, CompletionRequest
    ),
    Operation("post", "/tokenize", "the prompt's tokens", _OK, GenerateRequest),
    Operation(
        "get",
        "/health",
        "ready to generate",
        {200: Answer("ready, with an empty body", media_types=())},
    ),
    Operation("get", "/info", "the model and limits", {200: Answer("the info", Info)}),
    Operation("get", "/v1/models", "the model, as OpenAI lists it", _OK),
    Operation(
        "get", "/metrics", "Prometheus metrics", {200: Answer("text", media_types=("text/plain",))}
    ),
    Operation("get", OPENAPI_PATH, "this document", _OK),
)


def backend_openapi() -> dict[str, Any]:
    return openapi_document("tgi-serverless backend", VERSION, OPERATIONS)
