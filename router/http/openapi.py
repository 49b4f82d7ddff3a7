"""The router's OpenAPI document (`GET /openapi.json`): its route table.

Documented: what clients and workers call (`/route/`, `/pubkey/`, `/keys`, `/health`,
`/worker_status/`), the status and the reading half of the management API, which want the
admin key (`adminKey`: `Authorization: Bearer <admin key>`). Left out: the gateway
(`/endpoints/{name}/...`, the PyWorker's routes behind an endpoint's key), Vast's compatibility
routes, the autoscaler's, and the management API's writes (their bodies are flat views, not one
model).
"""

from __future__ import annotations

from typing import Any

from protocol import KeySet, RouteRequest, RouterStatus, WorkerStatusReport
from protocol.openapi import OPENAPI_PATH, Answer, Operation, openapi_document
from protocol.version import VERSION

__all__ = ["OPERATIONS", "SECURITY_SCHEMES", "router_openapi"]

ADMIN = "adminKey"
API_KEY = "apiKey"

SECURITY_SCHEMES = {
    ADMIN: {"type": "http", "scheme": "bearer", "description": "the router's admin key"},
    API_KEY: {"type": "http", "scheme": "bearer", "description": "the endpoint's API key"},
}

_JSON = Answer("the answer, as JSON")

OPERATIONS = (
    Operation(
        "post",
        "/route/",
        "a signed ticket for one request (or Vast's `no worker yet` answer)",
        {200: _JSON},
        RouteRequest,
        security=(API_KEY,),
    ),
    Operation(
        "get",
        "/pubkey/",
        "the newest public key, PEM",
        {200: Answer("PEM", media_types=("application/x-pem-file",))},
    ),
    Operation("get", "/keys", "the keys workers accept", {200: Answer("the keys", KeySet)}),
    Operation("get", "/health", "the router is up", {200: _JSON}),
    Operation(
        "post",
        "/worker_status/",
        "a worker's status report (with its credential or join token)",
        {200: _JSON},
        WorkerStatusReport,
    ),
    Operation(
        "get",
        "/status",
        "endpoints and workers",
        {200: Answer("the status", RouterStatus)},
        security=(ADMIN,),
    ),
    Operation("get", "/api/v0/endpoints/", "every endpoint", {200: _JSON}, security=(ADMIN,)),
    Operation(
        "get",
        "/api/v0/endpoints/{name}",
        "one endpoint",
        {200: _JSON},
        security=(ADMIN,),
        path_parameters=("name",),
    ),
    Operation("get", OPENAPI_PATH, "this document", {200: _JSON}),
)


def router_openapi() -> dict[str, Any]:
    return openapi_document(
        "tgi-serverless router", VERSION, OPERATIONS, security_schemes=SECURITY_SCHEMES
    )
