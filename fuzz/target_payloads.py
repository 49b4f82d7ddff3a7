"""Payload validation: the PyWorker's envelope (`pyworker.envelope`: the body, its payload,
the payload's workload by `protocol.workload`, its bytes for the backend) and the backend's
request models and TGI's validation rules (`tgi_server.http.bodies`, `tgi_server.validation`).

The input's first byte picks a route, the rest is a request body. Contract:

- the envelope raises only its 4xx errors (`BadRequest`, `InvalidPayload`); a workload is an
  integer from 0 to `MAX_COST`; the bytes it relays read back as the same JSON document;
- the backend raises only its 4xx errors (`BackendError`) on parsing and validating, and a
  request it accepts has a budget of at least one new token within the limits.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from fuzz.inputs import check_status, reference_json
from protocol.relay import RELAYED_PATHS as PATHS
from protocol.route import MAX_COST
from pyworker.envelope import encode_payload, payload_of, read_json, ticket_of, workload
from pyworker.errors import BadRequest, InvalidPayload, WorkerError
from tgi_server.errors import BackendError
from tgi_server.http.bodies import parse_generate_request
from tgi_server.validation import (
    Limits,
    check_best_of,
    check_stream_parameters,
    validate_request,
)

__all__ = ["check"]


DEFAULT_MAX_NEW_TOKENS = 2048
LIMITS = Limits()
CLIENT_ERRORS = range(400, 500)


def check(data: bytes) -> None:
    if not data:
        return
    path, body = PATHS[data[0] % len(PATHS)], data[1:]
    _check_envelope(path, body)
    _check_backend(body)


def _check_envelope(path: str, raw: bytes) -> None:
    try:
        document, strict = read_json(raw)
    except BadRequest as exc:
        check_status(exc, (400,))
        return
    for unsecured in (True, False):
        try:
            ticket_of(document, unsecured)
        except WorkerError as exc:  # InvalidPayload (422) or TicketRejected (401)
            check_status(exc, CLIENT_ERRORS)
    if not isinstance(document, dict):
        return
    payloads = [document]
    with contextlib.suppress(InvalidPayload):
        payloads.append(payload_of(document))
    for payload in payloads:
        _check_payload(path, payload, strict)


def _check_payload(path: str, payload: dict[str, Any], strict: bool) -> None:
    try:
        tokens = workload(path, payload, DEFAULT_MAX_NEW_TOKENS)
    except InvalidPayload:
        pass
    else:
        assert type(tokens) is int, f"workload {tokens!r}"
        assert 0 <= tokens <= MAX_COST, f"workload {tokens!r}"
    try:
        relayed = encode_payload(payload, strict)
    except BadRequest:
        return
    assert reference_json(json.loads(relayed)) == reference_json(payload), "relayed bytes differ"


def _check_backend(raw: bytes) -> None:
    try:
        request = parse_generate_request("application/json", raw)
        check_stream_parameters(request.parameters)
        check_best_of(request.parameters.best_of or 1, LIMITS)
        accepted = validate_request(request, LIMITS, _encode, seed_source=lambda: 0)
    except BackendError as exc:
        check_status(exc, CLIENT_ERRORS)
        return
    assert 1 <= accepted.max_new_tokens <= LIMITS.max_total_tokens
    assert accepted.input_length <= LIMITS.max_input_tokens


def _encode(text: str) -> list[int]:
    """A tokenizer stand-in: one token per UTF-8 byte (a lone surrogate is a tokenizer error)."""
    return list(text.encode("utf-8"))
