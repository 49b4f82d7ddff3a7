"""`POST /v1/chat/completions` and `POST /v1/completions`, on the same service as /generate.

Non-streamed answers carry TGI's timing headers; streamed ones are SSE chunks ending with
`data: [DONE]`, and an error after the stream has started is one `{"error": {"message",
"http_status_code": 422}}` event before `[DONE]`. Request errors found before streaming (bad
body, template, tools) are ordinary JSON errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from aiohttp import web

from protocol.sse import encode_data_event, encode_json_event
from protocol.tgi import GenerateRequest
from tgi_server.errors import BackendError
from tgi_server.events import TokenEvent
from tgi_server.http_common import (
    ENGINE_KEY,
    KEEPALIVE_EVENT,
    METRICS_KEY,
    SERVICE_KEY,
    SETTINGS_KEY,
    compute_type,
    json_response,
    read_json,
)
from tgi_server.openai_requests import chat_call, completion_call, tool_call
from tgi_server.openai_wire import (
    chat_body,
    chat_chunk,
    completion_body,
    completion_chunk,
    completion_final,
    error_event,
    tool_chunk,
    usage_chunk,
)
from tgi_server.service import GenerateResult
from tgi_server.wire import generate_headers

__all__ = ["chat_completions", "chat_document", "completion_document", "completions"]

log = logging.getLogger(__name__)

DONE_EVENT = encode_data_event("[DONE]")


class _KeepAlive:
    """Marks a silent interval in a stream of events."""


Chunk = bytes | _KeepAlive


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await chat_document(request, await read_json(request), time.monotonic())


async def completions(request: web.Request) -> web.StreamResponse:
    return await completion_document(request, await read_json(request), time.monotonic())


async def chat_document(
    request: web.Request, document: Any, received_at: float
) -> web.StreamResponse:
    app = request.app
    codec = app[ENGINE_KEY].model.codec
    call = chat_call(
        document, codec.render_chat, template_renders_tools=codec.template_renders_tools()
    )
    model = _model_name(app, call.model)
    if call.stream:
        events = _stream_events(app, call.request)

        async def chunks() -> AsyncGenerator[Chunk, None]:
            async for event in events:
                if isinstance(event, _KeepAlive):
                    yield event
                    continue
                if call.uses_tools:  # a tool call goes out whole, once complete
                    if event.completion is not None:
                        tool = tool_call(event.completion.generated_text)
                        yield encode_json_event(tool_chunk(event.completion, tool, model))
                    continue
                yield encode_json_event(chat_chunk(event, model, logprobs=call.logprobs))
                if event.completion is not None and call.include_usage:
                    yield encode_json_event(usage_chunk(event.completion, model))

        return await _sse(request, chunks())
    result = await _generate(app, call.request, received_at)
    tool = tool_call(result.best.completion.generated_text) if call.uses_tools else None
    body = chat_body(result, model, logprobs=call.logprobs, tool=tool)
    return json_response(body, headers=generate_headers(result, compute_type(app)))


async def completion_document(
    request: web.Request, document: Any, received_at: float
) -> web.StreamResponse:
    app = request.app
    call = completion_call(document, app[SETTINGS_KEY].max_client_batch_size)
    model = _model_name(app, call.model)
    if call.stream:

        async def chunks() -> AsyncGenerator[Chunk, None]:
            for index, generate_request in enumerate(call.requests):
                async for event in _stream_events(app, generate_request):
                    if isinstance(event, _KeepAlive):
                        yield event
                    elif event.completion is None:
                        yield encode_json_event(completion_chunk(event, index, model))
                    else:
                        final = completion_final(event, event.completion, index, model)
                        yield encode_json_event(final)

        return await _sse(request, chunks())
    results = await asyncio.gather(*(_generate(app, r, received_at) for r in call.requests))
    body = completion_body(list(results), model)
    return json_response(body, headers=generate_headers(results[0], compute_type(app)))


def _model_name(app: web.Application, requested: str | None) -> str:
    if requested and requested != "tgi":
        return requested
    return app[ENGINE_KEY].model.model_id


async def _generate(
    app: web.Application, request: GenerateRequest, received_at: float
) -> GenerateResult:
    recorder = app[METRICS_KEY]
    recorder.received()
    try:
        result = await app[SERVICE_KEY].generate(request, received_at, add_special_tokens=False)
    except BackendError as exc:
        recorder.failed(exc.error_type)
        raise
    recorder.served(result.best.completion, received_at, result.validated_at)
    return result


async def _stream_events(
    app: web.Application, request: GenerateRequest
) -> AsyncIterator[TokenEvent | _KeepAlive]:
    """Token events of one request (None for keep-alive), with the request's metrics."""
    recorder = app[METRICS_KEY]
    recorder.received()
    received_at = time.monotonic()
    service = app[SERVICE_KEY]
    try:
        async with contextlib.aclosing(service.stream(request, add_special_tokens=False)) as events:
            async for event in events:
                if event is None:
                    yield _KeepAlive()
                    continue
                if event.completion is not None:
                    recorder.served(event.completion, received_at, received_at)
                yield event
    except BackendError as exc:
        recorder.failed(exc.error_type)
        raise


async def _sse(request: web.Request, chunks: AsyncGenerator[Chunk, None]) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            "x-compute-type": compute_type(request.app),
        }
    )
    try:
        await response.prepare(request)
        await _write_chunks(response, chunks)
        await response.write(DONE_EVENT)
        await response.write_eof()
    except ConnectionResetError:
        log.debug("client went away during an OpenAI stream")
    return response


async def _write_chunks(response: web.StreamResponse, chunks: AsyncGenerator[Chunk, None]) -> None:
    try:
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                await response.write(KEEPALIVE_EVENT if isinstance(chunk, _KeepAlive) else chunk)
    except BackendError as exc:
        await response.write(encode_json_event(error_event(exc.message)))
    except ConnectionResetError:
        raise
    except Exception as exc:
        log.exception("an OpenAI stream failed")
        await response.write(encode_json_event(error_event(str(exc))))
