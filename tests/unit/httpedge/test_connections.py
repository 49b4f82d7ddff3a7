"""`httpedge.connections` without sockets: what a refused request's answer is, and that a
connection reads nothing more once it answers a request it could not parse."""

from __future__ import annotations

import asyncio
import json
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.test_utils import make_mocked_request
from aiohttp.web_protocol import RequestHandler

from httpedge.connections import JsonErrorHandler


async def _never(request: web.BaseRequest) -> web.StreamResponse:
    raise AssertionError("no request reaches the app here")


@pytest.fixture
async def handler() -> JsonErrorHandler:
    server = web.Server(_never)
    protocol = JsonErrorHandler(server, loop=asyncio.get_running_loop())
    protocol.connection_made(mock.Mock(spec=asyncio.Transport))
    return protocol


@pytest.mark.parametrize(
    ("exc", "status", "error_type", "message"),
    [
        (
            LineTooLong(b"aaaa", 8190),
            431,
            "headers_too_large",
            "the request line or a header is over the 8190-byte limit",
        ),
        (
            BadHttpMessage("Too many headers received"),
            431,
            "headers_too_large",
            "too many request headers",
        ),
        (
            BadHttpMessage("Invalid method encountered"),
            400,
            "bad_request",
            "cannot parse the request: Invalid method encountered",
        ),
    ],
)
async def test_a_request_it_cannot_parse_is_answered_in_json_and_closes(
    handler: JsonErrorHandler, exc: BadHttpMessage, status: int, error_type: str, message: str
) -> None:
    request = make_mocked_request("GET", "/", writer=mock.Mock(output_size=0))
    response = handler.handle_error(request, 400, exc, exc.message)  # as aiohttp calls it
    assert isinstance(response, web.Response)
    assert response.status == status
    assert response.content_type == "application/json"
    assert response.body is not None
    assert json.loads(bytes(response.body)) == {"error": message, "error_type": error_type}  # type: ignore[arg-type]
    assert not response.keep_alive


async def test_after_a_refusal_nothing_more_is_read(
    handler: JsonErrorHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rest of a 1 MiB header is neither parsed nor kept: reading stops at the refusal."""
    parsed: list[int] = []
    monkeypatch.setattr(RequestHandler, "data_received", lambda _, data: parsed.append(len(data)))
    request = make_mocked_request("GET", "/", writer=mock.Mock(output_size=0))
    handler.handle_error(request, 400, LineTooLong(b"a", 8190), "too long")
    handler.data_received(b"a" * 262144)
    assert parsed == []
    assert handler.transport is not None
    handler.transport.pause_reading.assert_called_once()  # type: ignore[attr-defined]
