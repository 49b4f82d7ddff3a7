"""TGI generate requests and answers, as pure logic: building the payload and its cost, reading a
`/generate` body, and decoding a `/generate_stream` byte stream into typed events.

The cost a ticket must pay is the payload's workload, `parameters.max_new_tokens` (§4.3), so the
SDK always sends an explicit `max_new_tokens` and routes with exactly that cost.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypedDict

import pydantic

from client.errors import (
    IncompleteStream,
    ProtocolError,
    StreamError,
    ValidationError,
    invalid_request,
)
from protocol.sse import ServerSentEvent, SSEError, SSEParser
from protocol.tgi import GenerateParameters, GenerateRequest, GenerateResponse, StreamResponse
from protocol.workload import workload_of

__all__ = [
    "DEFAULT_MAX_NEW_TOKENS",
    "GenerateCall",
    "GenerateOptions",
    "StreamDecoder",
    "build_generate_call",
    "parse_generate_response",
]

DEFAULT_MAX_NEW_TOKENS = 100


class GenerateOptions(TypedDict, total=False):
    """TGI's generation parameters other than `max_new_tokens`; omitted ones take TGI's default."""

    best_of: int
    decoder_input_details: bool
    details: bool
    do_sample: bool
    frequency_penalty: float
    grammar: dict[str, Any]
    repetition_penalty: float
    return_full_text: bool
    seed: int
    stop: list[str]
    temperature: float
    top_k: int
    top_n_tokens: int
    top_p: float
    truncate: int
    typical_p: float
    watermark: bool
    adapter_id: str


@dataclass(frozen=True)
class GenerateCall:
    """A worker request ready to route and send: the TGI payload and the cost it needs."""

    payload: dict[str, Any]
    cost: int


def build_generate_call(prompt: str, max_new_tokens: int, options: GenerateOptions) -> GenerateCall:
    """Validate the parameters as TGI would type them and build the payload; only the parameters
    given are sent. Raises ValidationError for a bad value, TypeError for an unknown name."""
    unknown = sorted(set(options) - set(GenerateParameters.model_fields))
    if unknown:
        raise TypeError(f"unknown generation parameter(s): {', '.join(unknown)}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise ValidationError("max_new_tokens must be an integer", origin="client")
    if max_new_tokens < 1:
        raise ValidationError("max_new_tokens must be at least 1", origin="client")
    payload = _validated_payload(prompt, {**options, "max_new_tokens": max_new_tokens})
    return GenerateCall(payload=payload, cost=workload_of(payload, max_new_tokens))


def _validated_payload(prompt: str, parameters: dict[str, Any]) -> dict[str, Any]:
    try:
        request = GenerateRequest.model_validate({"inputs": prompt, "parameters": parameters})
    except pydantic.ValidationError as exc:
        raise invalid_request("generate request", exc) from None
    return request.model_dump(exclude_unset=True)


def parse_generate_response(body: bytes) -> GenerateResponse:
    """The body of a `/generate` 200 as a GenerateResponse."""
    try:
        return GenerateResponse.model_validate_json(body)
    except pydantic.ValidationError:
        raise ProtocolError(
            "the worker's /generate answer is not a TGI generate response",
            origin="worker",
            status=200,
        ) from None


class StreamDecoder:
    """Feed it the bytes of a `/generate_stream` 200 in chunks of any size; it yields the
    StreamResponses each chunk completes, in order, and raises StreamError when it reaches an
    error event. `finish()` raises IncompleteStream when the stream ended before its final event.
    """

    def __init__(self) -> None:
        self._parser = SSEParser()
        self._finished = False

    @property
    def finished(self) -> bool:
        """True once the final event (the one with `generated_text`) has been decoded."""
        return self._finished

    def feed(self, chunk: bytes) -> Iterator[StreamResponse]:
        try:
            events = self._parser.feed(chunk)
        except SSEError as exc:
            raise ProtocolError(str(exc), origin="worker", status=200) from None
        for event in events:
            if self._finished:
                return
            response = _decode_event(event)
            self._finished = response.generated_text is not None
            yield response

    def finish(self) -> None:
        if not self._finished:
            raise IncompleteStream(
                "the token stream ended before its final event", origin="worker", status=200
            )


def _decode_event(event: ServerSentEvent) -> StreamResponse:
    try:
        data: Any = json.loads(event.data)
    except ValueError:
        raise _bad_event("an event is not JSON") from None
    if isinstance(data, dict) and "error" in data:
        raise _stream_error(data)
    try:
        return StreamResponse.model_validate(data)
    except pydantic.ValidationError:
        raise _bad_event("an event is not a TGI stream response") from None


def _stream_error(data: dict[str, Any]) -> StreamError:
    message = data["error"] if isinstance(data["error"], str) else json.dumps(data["error"])
    error_type = data.get("error_type")
    return StreamError(
        message or "error event without a message",
        origin="worker",
        status=200,
        error_type=error_type if isinstance(error_type, str) else None,
    )


def _bad_event(reason: str) -> ProtocolError:
    return ProtocolError(f"malformed token stream: {reason}", origin="worker", status=200)
