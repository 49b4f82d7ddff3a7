"""Routing tickets (`auth_data`): the fields, their canonical bytes, signing and verifying.

A router signs a ticket for one request to one worker; the PyWorker on that worker verifies
it before the payload may reach the backend (architecture §4.2). The native scheme is Ed25519
over the canonical bytes of every field except `signature`:

    json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

Values are signed with the JSON types they travel with, so a verifier must compute the bytes
from the mapping it received, never from a re-serialised model (where `100` may become `100.0`).

Both hot paths use libsodium (PyNaCl), standard Ed25519 (RFC 8032): `TicketSigner` signs with it
(Ed25519 signatures are deterministic, so its signatures are byte for byte those of
`cryptography`'s `sign`, a test checks it; about 14 us instead of 20 us per ticket on the build
machine, a router's largest cost per ticket), and the worker verifies with it (about 2/3 of
OpenSSL's time). Keys are still generated, stored and published with `cryptography`.

A ticket travels as a `Ticket`: the mapping the router signed, kept as it is, with typed views of
its fields. `TicketFields` checks a mapping from the wire (either scheme); `AuthData` is the
native scheme's stricter view.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign, crypto_sign_BYTES, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

__all__ = [
    "REQNUM_LIMIT",
    "SIGNATURE_FIELD",
    "TICKET_NUMBER_LIMIT",
    "AuthData",
    "Ticket",
    "TicketFields",
    "TicketSigner",
    "canonical_bytes",
    "decode_signature",
    "sign_ticket",
    "verify_ticket_signature",
]

SIGNATURE_FIELD = "signature"

TICKET_NUMBER_LIMIT = 2**53
"""Every `cost` and `exp` is below this: up to it, a JSON number holds every integer exactly.
Vast's tickets sign neither `exp` nor (with `vast-url`) `cost`, so a holder may write any
number there; bounding them keeps every comparison exact and finite."""

REQNUM_LIMIT = 2**63
"""Every `reqnum` (and `request_idx`) is below this: a router's counter is 64 bits."""

TicketNumber = (
    Annotated[StrictInt, Field(ge=0, lt=TICKET_NUMBER_LIMIT)]
    | Annotated[StrictFloat, Field(ge=0, lt=TICKET_NUMBER_LIMIT, allow_inf_nan=False)]
)
TicketCounter = Annotated[StrictInt, Field(ge=0, lt=REQNUM_LIMIT)]


class TicketFields(BaseModel):
    """A ticket's fields, checked, in either scheme: the five every ticket has, the request it
    pays for (Vast's first routers named none), and the native scheme's expiry, key id and
    worker epoch (Vast's tickets carry none of them). Unknown extra fields are kept (and covered
    by the signature). Every number is a non-negative JSON number of bounded size
    (`TICKET_NUMBER_LIMIT`, `REQNUM_LIMIT`)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    signature: StrictStr
    cost: TicketNumber = Field(description="workload units (tokens) this ticket pays for")
    endpoint: StrictStr
    reqnum: TicketCounter = Field(description="per-worker sequence number issued by the router")
    url: StrictStr = Field(description="base URL of the worker this ticket is valid for")
    request_idx: TicketCounter | None = None
    exp: TicketNumber | None = Field(default=None, description="expiry, unix seconds")
    kid: StrictStr | None = Field(default=None, description="id of the key that signed it")
    epoch: StrictStr | None = Field(
        default=None, description="the start of the worker it is for, as the worker reported it"
    )


class AuthData(TicketFields):
    """The native scheme's ticket: it always names its request, its expiry, its key and the
    worker's epoch (so it is good for one start of that worker only)."""

    request_idx: TicketCounter
    exp: TicketNumber = Field(description="expiry, unix seconds")
    kid: StrictStr = Field(description="id of the key that signed this ticket")
    epoch: StrictStr = Field(description="the start of the worker this ticket is valid for")


class Ticket:
    """A signed routing ticket, as a `/route/` answer carries it and a worker request's
    `auth_data` carries it back.

    Both schemes sign the fields with the JSON types they travel with (a `cost` of `100` is not
    `100.0`), and a ticket may carry fields this code does not know (Vast's `__request_id`), so
    a ticket keeps the mapping it was made from and gives it back unchanged (`auth_data`,
    `to_json`); its attributes are typed views of that mapping.

    `Ticket(fields)` takes fields known to be well formed (a router's own, just signed);
    `Ticket.parse(data)` checks what came over the wire first. Its repr never shows the
    signature.
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self._fields = dict(fields)

    @classmethod
    def parse(cls, data: object) -> Ticket:
        """The ticket in `data`, a JSON object from the wire; ValueError (pydantic's
        ValidationError for a field) when a field is missing or has the wrong JSON type."""
        if not isinstance(data, Mapping):
            raise ValueError("a ticket is a JSON object")
        ticket = cls(data)
        TicketFields.model_validate(ticket._fields)
        return ticket

    @property
    def url(self) -> str:
        """Base URL of the worker this ticket is valid for."""
        url: str = self._fields["url"]
        return url

    @property
    def cost(self) -> int | float:
        """The workload (tokens) it pays for."""
        cost: int | float = self._fields["cost"]
        return cost

    @property
    def endpoint(self) -> str:
        endpoint: str = self._fields["endpoint"]
        return endpoint

    @property
    def reqnum(self) -> int:
        """The worker's sequence number the router gave it."""
        reqnum: int = self._fields["reqnum"]
        return reqnum

    @property
    def request_idx(self) -> int | None:
        """The request it pays for (None: a Vast router that names none)."""
        request_idx: int | None = self._fields.get("request_idx")
        return request_idx

    @property
    def exp(self) -> int | float | None:
        """When it expires, unix seconds (None: Vast's tickets do not)."""
        exp: int | float | None = self._fields.get("exp")
        return exp

    @property
    def kid(self) -> str | None:
        """The id of the key that signed it (None: Vast's tickets name none)."""
        kid: str | None = self._fields.get("kid")
        return kid

    @property
    def epoch(self) -> str | None:
        """The start of the worker it is for (None: Vast's tickets name none)."""
        epoch: str | None = self._fields.get("epoch")
        return epoch

    def auth_data(self) -> dict[str, Any]:
        """The ticket as the `auth_data` of a worker request: a fresh copy, every field kept."""
        return dict(self._fields)

    def to_json(self) -> bytes:
        """The ticket's JSON, compact: the body of a `/route/` answer that found a worker."""
        return orjson.dumps(self._fields)

    def worker_url(self, path: str) -> str:
        """The URL of `path` (such as "/generate") on the worker this ticket is for."""
        return self.url.rstrip("/") + path

    def worker_body(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON body of a worker request (architecture §4.3): this ticket and the payload."""
        return {"auth_data": self.auth_data(), "payload": dict(payload)}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ticket):
            return NotImplemented
        return self._fields == other._fields

    def __repr__(self) -> str:
        return f"Ticket(url={self._fields.get('url')!r}, cost={self._fields.get('cost')!r})"


def canonical_bytes(fields: Mapping[str, Any]) -> bytes:
    """The bytes a ticket's signature covers: every field but `signature`, as canonical JSON.

    Raises ValueError for values JSON cannot carry exactly (NaN, infinities).
    """
    unsigned = (
        {key: value for key, value in fields.items() if key != SIGNATURE_FIELD}
        if SIGNATURE_FIELD in fields
        else fields
    )
    for key, value in unsigned.items():
        kind = type(value)
        if not (
            type(key) is str
            and key.isascii()
            and (kind is int or (kind is str and value.isascii()))
        ):
            break
    else:
        try:  # the same bytes as json.dumps below for ASCII text and integers, 10x faster
            return orjson.dumps(unsigned, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # an integer beyond 64 bits: json.dumps carries it
    text = json.dumps(
        unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def _check_finite(fields: Mapping[str, Any]) -> None:
    for key, value in fields.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"ticket field {key!r} must be finite, got {value!r}")


def sign_ticket(private_key: Ed25519PrivateKey, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Return `fields` plus a base64 Ed25519 `signature` over their canonical bytes."""
    _check_finite(fields)
    signature = private_key.sign(canonical_bytes(fields))
    return {**fields, SIGNATURE_FIELD: base64.b64encode(signature).decode("ascii")}


class TicketSigner:
    """One Ed25519 key, ready to sign many tickets: its libsodium secret is derived once."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self.private_key = private_key
        _, self._secret = crypto_sign_seed_keypair(private_key.private_bytes_raw())

    def sign(self, fields: dict[str, Any]) -> dict[str, Any]:
        """`fields` (the same dict) plus a base64 `signature` over their canonical bytes."""
        _check_finite(fields)
        signed = crypto_sign(canonical_bytes(fields), self._secret)  # signature + message
        fields[SIGNATURE_FIELD] = base64.b64encode(signed[:crypto_sign_BYTES]).decode("ascii")
        return fields


def decode_signature(signature: str) -> bytes | None:
    """Decode a base64 signature; None when it is not valid base64."""
    try:
        return base64.b64decode(signature.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None


def verify_ticket_signature(public_key: Ed25519PublicKey, ticket: Mapping[str, Any]) -> bool:
    """True when `ticket["signature"]` is a valid Ed25519 signature of the ticket's other fields."""
    signature = ticket.get(SIGNATURE_FIELD)
    if not isinstance(signature, str):
        return False
    raw = decode_signature(signature)
    if raw is None:
        return False
    try:
        message = canonical_bytes(ticket)
    except (TypeError, ValueError):
        return False
    # libsodium verifies in about two thirds of OpenSSL's time here, and is at least as strict
    # (it also refuses small-order keys and non-canonical points); the bytes are the same.
    try:
        VerifyKey(public_key.public_bytes_raw()).verify(message, raw)
    except (BadSignatureError, ValueError):  # ValueError: not 64 bytes of signature
        return False
    return True
