"""TGI's routes: the handlers of `/generate`, `/generate_stream`, `POST /`, `/invocations`,
`/tokenize`, `/health`, `/info`, `/v1/models` and `/metrics` (OpenAI's are in
`openai.routes`; `app.create_app` maps the paths to them all).

A generation handler reads its body (`bodies`), runs it through the service
(`responses.run_generate`, or `streaming.stream_response` for a stream) and answers with TGI's
bodies and headers (`wire`). Errors are raised as `BackendError`s, which the application's
middleware turns into TGI's JSON error body.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from aiohttp import web

from protocol.sse import encode_json_event
from protocol.tgi import GenerateRequest, Info
from protocol.version import VERSION
from protocol.workload import invocation_path
from tgi_server.errors import InvalidBodyError, UnhealthyError
from tgi_server.http.app_keys import ENGINE_KEY, HEALTH_KEY, METRICS_KEY, SERVICE_KEY, SETTINGS_KEY
from tgi_server.http.bodies import (
    generate_request_from,
    read_generate_request,
    read_json,
    stream_flag,
)
from tgi_server.http.responses import compute_type, json_response, run_generate
from tgi_server.http.streaming import stream_response
from tgi_server.http.wire import (
    generate_body,
    generate_headers,
    span_body,
    stream_event_bytes,
    stream_headers,
)
from tgi_server.openai.routes import chat_document, completion_document

__all__ = [
    "compat_generate",
    "generate",
    "generate_stream",
    "health",
    "info",
    "invocations",
    "metrics",
    "models",
    "tokenize",
]

ROUTER_NAME = "tgi-serverless"
"""`/info` `router` (TGI sends "text-generation-router"; see docs/backend.md)."""


async def generate(request: web.Request) -> web.Response:
    received_at = time.monotonic()
    body = await read_generate_request(request)
    return await _generate_response(request, body, received_at, as_list=False)


async def generate_stream(request: web.Request) -> web.StreamResponse:
    received_at = time.monotonic()
    body = await read_generate_request(request)
    return await _stream_response(request, body, received_at)


async def compat_generate(request: web.Request) -> web.StreamResponse:
    """`POST /`: `/generate` (as a one-item list) or, with `stream`, `/generate_stream`."""
    return await _compat_document(request, await read_json(request), time.monotonic())


async def invocations(request: web.Request) -> web.StreamResponse:
    """SageMaker's route: a compat body (`inputs`), a chat (`messages`) or completions
    (`prompt`), tried in that order (`protocol.workload.invocation_path`, which prices it)."""
    received_at = time.monotonic()
    document = await read_json(request)
    path = invocation_path(document) if isinstance(document, dict) else None
    if path is None:
        raise InvalidBodyError("data did not match any variant of untagged enum SagemakerRequest")
    return await _INVOCATION_HANDLERS[path](request, document, received_at)


async def _compat_document(
    request: web.Request, document: Any, received_at: float
) -> web.StreamResponse:
    body = generate_request_from(document)
    if body.parameters.return_full_text is None:
        full_text = request.app[SETTINGS_KEY].compat_return_full_text
        parameters = body.parameters.model_copy(update={"return_full_text": full_text})
        body = body.model_copy(update={"parameters": parameters})
    if stream_flag(document):
        return await _stream_response(request, body, received_at)
    return await _generate_response(request, body, received_at, as_list=True)


async def tokenize(request: web.Request) -> web.Response:
    body = await read_generate_request(request)
    spans = await request.app[SERVICE_KEY].spans(body.inputs)
    truncate = body.parameters.truncate
    if truncate is not None and len(spans) > truncate:
        spans = spans[len(spans) - truncate :]
    return json_response([span_body(span) for span in spans])


async def models(request: web.Request) -> web.Response:
    model_id = request.app[ENGINE_KEY].model.model_id
    entry = {"id": model_id, "object": "model", "created": 0, "owned_by": model_id}
    return json_response({"object": "list", "data": [entry]})


async def metrics(request: web.Request) -> web.Response:
    text = request.app[METRICS_KEY].render(request.app[ENGINE_KEY].stats)
    return web.Response(body=text, content_type="text/plain", charset="utf-8")


async def _generate_response(
    request: web.Request, body: GenerateRequest, received_at: float, *, as_list: bool
) -> web.Response:
    result = await run_generate(request.app, body, received_at)
    headers = generate_headers(result, compute_type(request.app))
    payload = generate_body(result)
    return json_response([payload] if as_list else payload, headers=headers)


async def _stream_response(
    request: web.Request, body: GenerateRequest, received_at: float
) -> web.StreamResponse:
    encode = partial(stream_event_bytes, details=body.parameters.details)
    return await stream_response(
        request,
        stream_headers(compute_type(request.app), body.inputs),
        [(body, encode)],
        received_at,
        error_event=lambda exc: encode_json_event(exc.body().model_dump(exclude_none=True)),
    )


async def health(request: web.Request) -> web.Response:
    """200 with an empty body; after a failed generation, only once one token generates."""
    if not await request.app[HEALTH_KEY].healthy():
        raise UnhealthyError()
    return web.Response(status=200)


async def info(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    body = Info(
        model_id=request.app[ENGINE_KEY].model.model_id,
        model_sha=None,
        model_pipeline_tag="text-generation",
        max_concurrent_requests=settings.max_concurrent_requests,
        max_best_of=settings.max_best_of,
        max_stop_sequences=settings.max_stop_sequences,
        max_input_tokens=settings.max_input_tokens,
        max_total_tokens=settings.max_total_tokens,
        validation_workers=settings.validation_workers,
        max_client_batch_size=settings.max_client_batch_size,
        router=ROUTER_NAME,
        version=VERSION,
        sha=None,
        docker_label=None,
    )
    return json_response(body.model_dump())


_INVOCATION_HANDLERS = {
    "/": _compat_document,
    "/v1/chat/completions": chat_document,
    "/v1/completions": completion_document,
}
"""The handler of each route an `/invocations` body may stand for."""
