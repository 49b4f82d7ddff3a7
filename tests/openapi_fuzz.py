"""Schemathesis against a running app's OpenAPI document, bounded: a few examples per operation.

`fuzz` runs in a thread of its own (schemathesis calls with `requests`, which blocks), so that
the test's event loop keeps serving the app under test; it returns one line per operation that
failed a check: a 5xx, or an answer that does not conform to the document.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok
from schemathesis.generation.case import Case

__all__ = ["fuzz", "served_routes"]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


async def fuzz(
    document: dict[str, Any],
    base_url: str,
    *,
    headers: dict[str, str] | None = None,
    prepare: Callable[[Case[Any]], None] | None = None,
    max_examples: int = 8,
) -> list[str]:
    """Each operation of `document`, tried `max_examples` times with valid data and as many with
    invalid data (schemathesis' positive and negative modes) against `base_url`;
    `prepare` may change a case before it is sent (a valid ticket, say)."""
    return await asyncio.to_thread(
        _fuzz_all, document, base_url, headers or {}, prepare, max_examples
    )


def _fuzz_all(
    document: dict[str, Any],
    base_url: str,
    headers: dict[str, str],
    prepare: Callable[[Case[Any]], None] | None,
    max_examples: int,
) -> list[str]:
    schema = schemathesis.openapi.from_dict(document)
    failures = []
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"schemathesis cannot read the document: {result}"
        operations.append(result.ok())
    for operation, mode in [(op, mode) for op in operations for mode in GenerationMode]:

        @settings(
            max_examples=max_examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(mode))
        def check(case: Case[Any]) -> None:
            if prepare is not None:
                prepare(case)
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)

        try:
            check()
        except Unsatisfiable:  # an operation with no input has no invalid input to send
            continue
        except (AssertionError, OSError, BaseExceptionGroup) as exc:  # a failed check, a crash
            # (the connection broken): each named, and the test fails on them all
            failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    """`app`'s routes as (method, path template), as an OpenAPI document names them."""
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
