"""Non-streamed responses, for TGI's routes and OpenAI's alike.

`run_generate` runs one request to its end and counts its outcome in the metrics exactly once
(`recording_outcome`, which its streamed twin `streaming.run_stream` uses too); `json_response`
writes a JSON body as TGI does (compact, raw UTF-8); `compute_type` is the `x-compute-type`
header every generation response carries, streamed or not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from protocol.tgi import GenerateRequest
from tgi_server.errors import BackendError, GenerationError
from tgi_server.http.app_keys import ENGINE_KEY, METRICS_KEY, SERVICE_KEY, SETTINGS_KEY
from tgi_server.http.wire import derived_compute_type, dumps
from tgi_server.metrics import BackendMetrics
from tgi_server.service import GenerateResult

__all__ = ["compute_type", "json_response", "recording_outcome", "run_generate"]

log = logging.getLogger(__name__)


async def run_generate(
    app: web.Application,
    body: GenerateRequest,
    received_at: float,
    *,
    add_special_tokens: bool = True,
) -> GenerateResult:
    """Run one non-streamed request and record its outcome exactly once, as `run_stream` does
    for a stream: served, failed with its error type, or dropped when the handler was cancelled
    (its client went away). Any other error is raised as a GenerationError."""
    metrics, service = app[METRICS_KEY], app[SERVICE_KEY]
    dropped = (asyncio.CancelledError,)
    with recording_outcome(metrics, dropped=dropped, failure_log="a request failed"):
        result = await service.generate(body, received_at, add_special_tokens=add_special_tokens)
    metrics.served(result.best.completion, received_at, result.validated_at)
    return result


@contextmanager
def recording_outcome(
    metrics: BackendMetrics, *, dropped: tuple[type[BaseException], ...], failure_log: str
) -> Iterator[None]:
    """Count a request as received; if the block raises, count it as failed with the error's
    type, or as dropped for a `dropped` exception (how a client that went away shows), and
    re-raise. Any other error is logged (`failure_log`) and raised as a GenerationError.
    Counting a request that ends well as served is the caller's, after the block."""
    metrics.received()
    try:
        yield
    except BackendError as exc:
        metrics.failed(exc.error_type)
        raise
    except dropped:
        metrics.dropped()
        raise
    except Exception as exc:
        log.exception(failure_log)
        error = GenerationError(f"Server error: {exc}")
        metrics.failed(error.error_type)
        raise error from exc


def json_response(
    body: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """`body` as compact JSON with raw UTF-8, as TGI (serde_json) writes it."""
    return web.Response(
        body=dumps(body).encode("utf-8"),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def compute_type(app: web.Application) -> str:
    """`x-compute-type`: the configured one (`COMPUTE_TYPE`), else TGI's for the model's
    device (`wire.derived_compute_type`)."""
    configured = app[SETTINGS_KEY].compute_type
    if configured:
        return configured
    model = app[ENGINE_KEY].model
    return derived_compute_type(model.device_type, model.device_name)
