"""`POST /v1/chat/completions` and `POST /v1/completions`, on the same service as /generate.

Non-streamed answers carry TGI's timing headers; streamed ones are SSE chunks ending with
`data: [DONE]`, and an error after the stream has started is one `{"error": {"message",
"http_status_code": 422}}` event before `[DONE]`. Request errors found before streaming (bad
body, template, tools) are ordinary JSON errors.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from protocol.sse import encode_data_event, encode_json_event
from protocol.tgi import GenerateRequest
from tgi_server.errors import ToolError
from tgi_server.generation.events import Completion, TokenEvent
from tgi_server.http.app_keys import ENGINE_KEY, SERVICE_KEY, SETTINGS_KEY
from tgi_server.http.bodies import read_json
from tgi_server.http.responses import compute_type, json_response, run_generate
from tgi_server.http.streaming import EncodeEvent, stream_response
from tgi_server.http.wire import generate_headers, span_body
from tgi_server.openai.requests import (
    ChatCall,
    chat_call,
    completion_call,
    cut_tool_call,
    tool_call,
)
from tgi_server.openai.tool_stream import ToolCallStream
from tgi_server.openai.wire import (
    ToolAnswer,
    chat_body,
    chat_chunk,
    completion_body,
    completion_chunk,
    completion_final,
    delta_chunk,
    error_event,
    usage_chunk,
)
from tgi_server.service import GenerateResult

__all__ = [
    "chat_completions",
    "chat_document",
    "chat_encoder",
    "chat_tokenize",
    "completion_document",
    "completion_encoder",
    "completions",
]

log = logging.getLogger(__name__)

DONE_EVENT = encode_data_event("[DONE]")


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await chat_document(request, await read_json(request), time.monotonic())


async def completions(request: web.Request) -> web.StreamResponse:
    return await completion_document(request, await read_json(request), time.monotonic())


async def chat_tokenize(request: web.Request) -> web.Response:
    """TGI's `POST /chat_tokenize`: the prompt a chat body stands for (template, tools and tool
    prompt, as `/v1/chat/completions` builds it) and its tokens, without special tokens as that
    route tokenizes it: `{"tokenize_response": [<token>...], "templated_text": <prompt>}`."""
    prompt = _chat_call(request.app, await read_json(request)).request.inputs
    spans = await request.app[SERVICE_KEY].spans(prompt, add_special_tokens=False)
    body = {"tokenize_response": [span_body(span) for span in spans], "templated_text": prompt}
    return json_response(body)


def _chat_call(app: web.Application, document: Any) -> ChatCall:
    codec = app[ENGINE_KEY].model.codec
    return chat_call(
        document, codec.render_chat, template_renders_tools=codec.template_renders_tools()
    )


async def chat_document(
    request: web.Request, document: Any, received_at: float
) -> web.StreamResponse:
    app = request.app
    call = _chat_call(app, document)
    model = _model_name(app, call.model)
    if call.stream:
        return await _sse(request, [(call.request, chat_encoder(call, model))], received_at)
    result = await _generate(app, call.request, received_at)
    tool = answered_tool(result.best.completion) if call.uses_tools else None
    body = chat_body(result, model, logprobs=call.logprobs, tool=tool)
    return json_response(body, headers=generate_headers(result, compute_type(app)))


async def completion_document(
    request: web.Request, document: Any, received_at: float
) -> web.StreamResponse:
    app = request.app
    call = completion_call(document, app[SETTINGS_KEY].max_client_batch_size)
    model = _model_name(app, call.model)
    if call.stream:
        streams = [
            (generate_request, completion_encoder(index, model))
            for index, generate_request in enumerate(call.requests)
        ]
        return await _sse(request, streams, received_at)
    results = await _generate_all(app, call.requests, received_at)
    body = completion_body(results, model)
    return json_response(body, headers=generate_headers(results[0], compute_type(app)))


def answered_tool(completion: Completion) -> ToolAnswer:
    """The tool call of a finished tool-grammar output. One the token budget cut short is
    answered as OpenAI answers it, as far as it got, with finish reason `length` (TGI refuses it
    with a 422 `tool_error`, losing what was generated)."""
    try:
        return tool_call(completion.generated_text)
    except ToolError:
        cut = cut_tool_call(completion.generated_text)
        if completion.finish_reason != "length" or cut is None:
            raise
        return cut


def chat_encoder(call: ChatCall, model: str) -> EncodeEvent:
    """A chat stream's SSE bytes per token event: a chunk per token or, with tools, the tool
    call's deltas as they can be sent (`ToolCallStream`); then the usage chunk when asked."""
    tools = ToolCallStream() if call.uses_tools else None

    def encode(event: TokenEvent) -> bytes:
        completion = event.completion
        if tools is None:
            data = encode_json_event(chat_chunk(event, model, logprobs=call.logprobs))
        else:
            data = _tool_chunks(tools, event, model)
        if completion is not None and call.include_usage:
            data += encode_json_event(usage_chunk(completion, model))
        return data

    return encode


def _tool_chunks(tools: ToolCallStream, event: TokenEvent, model: str) -> bytes:
    """The chunks of a tool call's deltas that `event` lets us send; the last event's last
    chunk carries the finish reason (an empty delta when nothing is left to send)."""
    deltas = tools.push("" if event.token.special else event.token.text)
    completion = event.completion
    if completion is None:
        return b"".join(encode_json_event(delta_chunk(delta, model, None)) for delta in deltas)
    deltas += tools.finish(completion.generated_text, cut=completion.finish_reason == "length")
    last = deltas.pop() if deltas else {}
    chunks = [delta_chunk(delta, model, None) for delta in deltas]
    chunks.append(delta_chunk(last, model, completion.finish_reason))
    return b"".join(encode_json_event(chunk) for chunk in chunks)


def completion_encoder(index: int, model: str) -> EncodeEvent:
    """Prompt `index`'s SSE bytes per token event: a chunk, and a final chunk with usage."""

    def encode(event: TokenEvent) -> bytes:
        if event.completion is None:
            return encode_json_event(completion_chunk(event, index, model))
        return encode_json_event(completion_final(event, event.completion, index, model))

    return encode


def _model_name(app: web.Application, requested: str | None) -> str:
    if requested and requested != "tgi":
        return requested
    return app[ENGINE_KEY].model.model_id


async def _generate(
    app: web.Application, request: GenerateRequest, received_at: float
) -> GenerateResult:
    return await run_generate(app, request, received_at, add_special_tokens=False)


async def _generate_all(
    app: web.Application, requests: Sequence[GenerateRequest], received_at: float
) -> list[GenerateResult]:
    """Every prompt's result; the first that fails ends the others at once (their slots and
    engine jobs freed, counted as dropped) and is raised."""
    tasks = [asyncio.ensure_future(_generate(app, request, received_at)) for request in requests]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _sse(
    request: web.Request,
    streams: list[tuple[GenerateRequest, EncodeEvent]],
    received_at: float,
) -> web.StreamResponse:
    """Stream each request in turn straight to the socket, then `data: [DONE]`."""
    headers = {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        "x-compute-type": compute_type(request.app),
    }
    return await stream_response(
        request,
        headers,
        streams,
        received_at,
        error_event=lambda exc: encode_json_event(error_event(exc.message)),
        trailer=DONE_EVENT,
        add_special_tokens=False,
    )
