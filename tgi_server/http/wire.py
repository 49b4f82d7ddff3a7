"""TGI's response bodies and headers, key for key in TGI's order.

Dicts keep insertion order and `json.dumps` keeps it too, so each builder below writes its keys
in the order TGI's serde structs serialize them, omitting the ones TGI skips. Floats are written
as TGI writes its f32 values (shortest decimal form); non-finite ones become null, as serde does.

`stream_event_bytes` is the per-token hot path of `/generate_stream`: it writes the common event
(no top tokens, not the last) from a template, byte for byte what the general builder and
`json.dumps` give (the tests compare the two).
"""

from __future__ import annotations

import json
import math
import struct
import time
from json.encoder import encode_basestring  # json.dumps of a str, ensure_ascii=False
from typing import Any

import numpy

from protocol.sse import encode_json_event
from tgi_server.generation.events import Completion, GeneratedToken, PrefillToken, TokenEvent
from tgi_server.model.codec import TokenSpan
from tgi_server.service import FinishedSequence, GenerateResult

__all__ = [
    "derived_compute_type",
    "dumps",
    "f32",
    "generate_body",
    "generate_headers",
    "span_body",
    "stream_event_body",
    "stream_event_bytes",
    "stream_headers",
]

JSON = dict[str, Any]
_F32_MAX = 3.4028234663852886e38


def dumps(body: Any) -> str:
    """Compact JSON with raw UTF-8, as serde_json writes it."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def span_body(span: TokenSpan) -> JSON:
    """A prompt token as `/tokenize` and `/chat_tokenize` list it (TGI's `SimpleToken`)."""
    return {"id": span.id, "text": span.text, "start": span.start, "stop": span.stop}


def f32(value: float | None) -> float | None:
    """`value` as TGI prints an f32: the shortest decimal that round-trips; null if not finite."""
    if value is None or not math.isfinite(value):
        return None
    if abs(value) > _F32_MAX:  # may still round down to the largest f32
        try:
            value = struct.unpack("<f", struct.pack("<f", value))[0]
        except OverflowError:
            return None
    # numpy prints a float32 as the shortest decimal string that reads back as the same float32.
    return float(str(numpy.float32(value)))


def token_body(token: GeneratedToken) -> JSON:
    return {
        "id": token.id,
        "text": token.text,
        "logprob": f32(token.logprob),
        "special": token.special,
    }


def prefill_body(token: PrefillToken) -> JSON:
    return {"id": token.id, "text": token.text, "logprob": f32(token.logprob)}


def generate_body(result: GenerateResult) -> JSON:
    """The body of a `POST /generate` 200."""
    body: JSON = {"generated_text": result.best.completion.generated_text}
    if result.request.details or result.request.decoder_input_details:
        body["details"] = _details_body(result)
    return body


def stream_event_body(event: TokenEvent, *, details: bool) -> JSON:
    """One `/generate_stream` event; the last one also carries the text and (maybe) details."""
    body: JSON = {"index": event.index, "token": token_body(event.token)}
    if event.top_tokens:
        body["top_tokens"] = [token_body(token) for token in event.top_tokens]
    completion = event.completion
    body["generated_text"] = completion.generated_text if completion else None
    body["details"] = _stream_details_body(completion) if completion and details else None
    return body


def stream_event_bytes(event: TokenEvent, *, details: bool) -> bytes:
    """One `/generate_stream` event as SSE bytes: `encode_json_event(stream_event_body(...))`."""
    if event.top_tokens or event.completion is not None:
        return encode_json_event(stream_event_body(event, details=details))
    token = event.token
    logprob = f32(token.logprob)
    return (
        f'data: {{"index":{event.index:d},"token":{{"id":{token.id:d},'
        f'"text":{encode_basestring(token.text)},'
        f'"logprob":{"null" if logprob is None else repr(logprob)},'
        f'"special":{"true" if token.special else "false"}}},'
        '"generated_text":null,"details":null}\n\n'
    ).encode()


def generate_headers(result: GenerateResult, compute_type: str) -> dict[str, str]:
    """TGI's timing and size headers for a non-streamed response."""
    completion = result.best.completion
    finished_at = time.monotonic()
    inference_s = completion.finished_at - completion.started_at
    generated = completion.generated_tokens
    return {
        "x-compute-type": compute_type,
        "x-compute-time": str(finished_at - result.received_at),
        "x-compute-characters": str(len(result.request.inputs)),
        "x-total-time": _ms(finished_at - result.received_at),
        "x-validation-time": _ms(result.validated_at - result.received_at),
        "x-queue-time": _ms(completion.started_at - completion.queued_at),
        "x-inference-time": _ms(inference_s),
        "x-time-per-token": _ms(inference_s / max(generated, 1)),
        "x-prompt-tokens": str(completion.input_length),
        "x-generated-tokens": str(generated),
    }


def derived_compute_type(device_type: str, device_name: str | None) -> str:
    """`x-compute-type` as TGI's launcher sets it: `<shards>-<gpu name, lowercased, spaces as
    dashes>` on a named GPU (one shard here), its router's default `gpu+optimized` on an
    unnamed one, and the torch device type ("cpu") where TGI would not run at all."""
    if device_type != "cuda":
        return device_type
    if not device_name:
        return "gpu+optimized"
    return "1-" + device_name.lower().replace(" ", "-")


def stream_headers(compute_type: str, inputs: str) -> dict[str, str]:
    return {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        "x-compute-type": compute_type,
        "x-compute-characters": str(len(inputs)),
    }


def _details_body(result: GenerateResult) -> JSON:
    body = _sequence_body(result.best, include_text=False)
    if result.others:
        body["best_of_sequences"] = [
            _sequence_body(sequence, include_text=True) for sequence in result.others
        ]
    if result.request.top_n_tokens:
        body["top_tokens"] = _top_tokens_body(result.best)
    return body


def _sequence_body(sequence: FinishedSequence, *, include_text: bool) -> JSON:
    completion = sequence.completion
    body: JSON = {"generated_text": completion.generated_text} if include_text else {}
    body["finish_reason"] = completion.finish_reason
    body["generated_tokens"] = completion.generated_tokens
    body["seed"] = completion.seed
    body["prefill"] = [prefill_body(token) for token in completion.prefill]
    body["tokens"] = [token_body(token) for token in sequence.tokens]
    if include_text and any(sequence.top_tokens):
        body["top_tokens"] = _top_tokens_body(sequence)
    return body


def _top_tokens_body(sequence: FinishedSequence) -> list[list[JSON]]:
    return [[token_body(token) for token in step] for step in sequence.top_tokens]


def _stream_details_body(completion: Completion) -> JSON:
    return {
        "finish_reason": completion.finish_reason,
        "generated_tokens": completion.generated_tokens,
        "seed": completion.seed,
        "input_length": completion.input_length,
    }


def _ms(seconds: float) -> str:
    return str(max(int(seconds * 1000), 0))
