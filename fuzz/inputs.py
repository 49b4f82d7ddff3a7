"""Turning fuzz bytes into the values the targets feed: JSON documents and chunkings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

__all__ = ["MISSING", "check_status", "chunks", "json_value", "reference_json"]

MISSING = object()
"""What `json_value` gives for bytes that are not a JSON document."""


def json_value(data: bytes) -> Any:
    """`data` read as Python's `json` reads a request body (NaN, big integers and lone
    surrogates included), or `MISSING` when it reads nothing."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return MISSING


def check_status(error: Exception, allowed: range | tuple[int, ...]) -> None:
    """The contract on an error a target raised: its HTTP status is one of `allowed`."""
    status = getattr(error, "status", None)
    assert status in allowed, f"{error!r} answers {status}, not one of {allowed}"


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    """`data` in pieces of `size` bytes (at least one), the last shorter."""
    step = max(size, 1)
    for at in range(0, len(data), step):
        yield data[at : at + step]


def reference_json(value: Any, **options: Any) -> str | None:
    """`json.dumps(value, **options)`, the documented form a fast path must match; None when
    `json` itself refuses the value (a NaN under `allow_nan=False`, nesting too deep)."""
    try:
        return json.dumps(value, **options)
    except (ValueError, RecursionError):
        return None
