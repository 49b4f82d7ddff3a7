"""The Vast message builders: `protocol.vast_tickets.vast_message` (the bytes Vast's router
signs and its PyWorker verifies) and the records of `router.vast.wire` (what Vast's client
reads from our router).

The input is a JSON document. Contract:

- `vast_message` gives exactly `json.dumps` of the signed fields as its docstring names them
  (the fast path included), or KeyError when one is missing;
- `numeric_id` gives a non-negative integer for any name, and every record is a JSON object
  `json.dumps` can write.
"""

from __future__ import annotations

import json
from typing import Any

from fuzz.inputs import MISSING, json_value, reference_json
from protocol.vast_tickets import LEGACY_FIELDS, VastVariant, vast_message
from router.routing.backplane import EndpointView, WorkerView
from router.vast.wire import endpoint_record, numeric_id, worker_record

__all__ = ["check"]


def check(data: bytes) -> None:
    value = json_value(data)
    if isinstance(value, dict):
        for variant in VastVariant:
            _check_message(variant, value)
        _check_records(value)
    name = data.decode("utf-8", errors="replace") if value is MISSING else str(value)
    identifier = numeric_id(name)
    assert type(identifier) is int, f"numeric_id gave {identifier!r}"
    assert identifier >= 0, f"numeric_id gave {identifier!r}"


def _check_message(variant: VastVariant, ticket: dict[str, Any]) -> None:
    names = ("url",) if variant is VastVariant.URL else LEGACY_FIELDS
    try:
        message = vast_message(variant, ticket)
    except KeyError:
        assert any(name not in ticket for name in names), "KeyError with every field there"
        return
    fields = {name: ticket[name] for name in names}
    expected = reference_json(fields, indent=4, sort_keys=variant is VastVariant.URL)
    assert expected is not None, "json.dumps refuses what vast_message wrote"
    assert message == expected.encode("utf-8"), "vast_message differs from json.dumps"


def _check_records(document: dict[str, Any]) -> None:
    name = str(document.get("name", ""))
    endpoint = EndpointView(name=name, api_key="key", created_at=0.0, params=document)
    json.dumps(endpoint_record(endpoint))
    state = document.get("state")
    worker = WorkerView(
        id=name,
        url=str(document.get("url", "")),
        state=state if isinstance(state, str) else "ready",
        max_perf=1.0,
        expected_load=0.0,
        last_report_at=0.0,
    )
    json.dumps(worker_record(worker))
