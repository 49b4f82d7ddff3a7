"""The PyWorker's OpenAPI document (`GET /openapi.json`): its route table.

A relayed route takes the envelope `{"auth_data": <ticket>, "payload": <TGI body>}`
(`pyworker.envelope`). The envelope models below only name its two parts for the document: the
ticket is the router's `protocol.AuthData` (the native scheme's), the payload TGI's
`protocol.GenerateRequest` for `/generate` and `/generate_stream`, and any JSON object for the
other relayed routes (their bodies belong to the backend). Tickets travel in the body, so the
document has no security scheme: a request with no valid ticket is answered 401 or 403.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from protocol import AuthData, GenerateRequest, Info
from protocol.openapi import OPENAPI_PATH, Answer, Operation, openapi_document
from protocol.version import VERSION

__all__ = ["OPERATIONS", "GenerateEnvelope", "RelayEnvelope", "worker_openapi"]


class GenerateEnvelope(BaseModel):
    """What `/generate` and `/generate_stream` take: a ticket and TGI's body."""

    auth_data: AuthData
    payload: GenerateRequest


class RelayEnvelope(BaseModel):
    """What the other relayed routes take: a ticket and the backend's body, as it is."""

    auth_data: AuthData
    payload: dict[str, Any]


_JSON = Answer("the backend's answer, as JSON")
_STREAM = Answer("the backend's server-sent events", media_types=("text/event-stream",))
_JSON_OR_STREAM = Answer(
    "the backend's answer: JSON, or server-sent events",
    media_types=("application/json", "text/event-stream"),
)

OPERATIONS = (
    Operation("post", "/generate", "relay TGI's /generate", {200: _JSON}, GenerateEnvelope),
    Operation("post", "/generate_stream", "relay TGI's stream", {200: _STREAM}, GenerateEnvelope),
    Operation("post", "/", "relay TGI's compat route", {200: _JSON_OR_STREAM}, RelayEnvelope),
    Operation(
        "post", "/v1/chat/completions", "relay a chat", {200: _JSON_OR_STREAM}, RelayEnvelope
    ),
    Operation(
        "post", "/v1/completions", "relay a completion", {200: _JSON_OR_STREAM}, RelayEnvelope
    ),
    Operation(
        "post", "/invocations", "relay SageMaker's route", {200: _JSON_OR_STREAM}, RelayEnvelope
    ),
    Operation("post", "/tokenize", "relay TGI's /tokenize", {200: _JSON}, GenerateEnvelope),
    Operation("post", "/chat_tokenize", "relay a chat's tokens", {200: _JSON}, RelayEnvelope),
    Operation("get", "/info", "the backend's /info", {200: Answer("the info", Info)}),
    Operation("get", "/v1/models", "the backend's model list", {200: _JSON}),
    Operation("get", "/health", "the worker's state (503 until it serves)", {200: _JSON}),
    Operation("get", "/ping", "alive", {200: Answer("pong", media_types=("text/plain",))}),
    Operation(
        "get", "/metrics", "Prometheus metrics", {200: Answer("text", media_types=("text/plain",))}
    ),
    Operation("get", OPENAPI_PATH, "this document", {200: _JSON}),
)


def worker_openapi() -> dict[str, Any]:
    return openapi_document("tgi-serverless PyWorker", VERSION, OPERATIONS)
