"""The request envelope, `{"auth_data": <ticket>, "payload": <TGI body>}`, as pure functions:
reading the body, taking it apart, the payload's workload, and the payload's bytes for the
backend. Each refusal is a `pyworker.errors` exception (400 or 422).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from protocol import workload_for_path
from protocol.workload import WorkloadError
from pyworker.errors import BadRequest, InvalidPayload, TicketRejected

__all__ = ["encode_payload", "payload_of", "read_json", "ticket_of", "workload"]

# Every digit to "0", everything else to " ": 19 zeros in a row may be an integer orjson
# cannot hold exactly. (A translation and a substring search: ten times a regex's speed.)
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_DIGIT_RUN = b"0" * 19


def read_json(raw: bytes) -> tuple[Any, bool]:
    """The parsed body, and whether orjson (strict RFC 8259, 4x faster) read it.

    orjson reads an integer beyond 64 bits as a float, so a body with a run of 19 or more
    digits goes to Python's `json`, which keeps it exact; so does what only `json` accepts
    (NaN, lone surrogates, UTF-16). Either way the values are those `json.loads` would give;
    what neither reads (nested too deep for both included) is a BadRequest.
    """
    if _LONG_DIGIT_RUN not in raw.translate(_DIGITS_AS_ZEROS):
        try:
            return orjson.loads(raw), True
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(raw), False
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


def encode_payload(payload: dict[str, Any], strict: bool) -> bytes:
    """The payload as compact JSON for the backend; orjson's when orjson could read it.

    orjson would write a NaN as null, so a body only `json` could read goes back through it;
    so does one nested deeper than orjson writes (254 levels). `json` writes it ASCII-escaped:
    a lone UTF-16 surrogate (which `json` reads from a `\\ud800` escape) has no UTF-8 form, so
    it can only go on as the escape it came as. One nested deeper than `json` writes is a
    BadRequest.
    """
    if strict:
        try:
            return orjson.dumps(payload)
        except orjson.JSONEncodeError:
            pass
    try:
        return json.dumps(payload, separators=(",", ":")).encode("ascii")
    except RecursionError:
        raise BadRequest("the payload is nested too deeply to relay: flatten it") from None


def ticket_of(body: Any, unsecured: bool) -> Any:
    """The envelope's ticket, unchecked (the verifier checks it), before its payload is read."""
    if not isinstance(body, dict):
        raise InvalidPayload('body must be a JSON object {"auth_data": {...}, "payload": {...}}')
    if "auth_data" not in body and not unsecured:
        raise TicketRejected(401, "missing", "`auth_data` is missing: get a ticket from /route/")
    return body.get("auth_data")


def payload_of(body: dict[str, Any]) -> dict[str, Any]:
    """The envelope's payload (`body` is one `ticket_of` accepted)."""
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise InvalidPayload("`payload` must be a JSON object (a TGI request body)")
    return payload


def workload(path: str, payload: dict[str, Any], default_max_new_tokens: int) -> int:
    """The tokens the payload may generate on `path`: what the ticket's cost must cover."""
    try:
        return workload_for_path(path, payload, default_max_new_tokens)
    except WorkloadError as exc:
        raise InvalidPayload(str(exc)) from None
