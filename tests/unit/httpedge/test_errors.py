"""The aiohttp error middleware: what reaches the client, what reaches the log, and when it
stands aside (a redirect; an answer already under way)."""

from __future__ import annotations

import json
import logging
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from httpedge.errors import error_middleware
from protocol.errors import ErrorType, ServiceError

LOG = logging.getLogger("tests.httpedge")


class Missing(ServiceError):
    error_type = ErrorType.NOT_FOUND


class Down(ServiceError):
    error_type = ErrorType.BACKEND_UNAVAILABLE


class Waking(ServiceError):
    error_type = ErrorType.NOT_READY


async def answer(
    error: BaseException, *, sent: int = 0, seen: list[ServiceError] | None = None
) -> web.StreamResponse:
    """What the middleware makes of `error` raised by a handler of `POST /generate`, when
    `sent` bytes of an answer are out already."""

    def on_error(request: web.Request, error: ServiceError) -> None:
        if seen is not None:
            seen.append(error)

    middleware = error_middleware(LOG, body_limit=1024, on_error=on_error)
    request = make_mocked_request("POST", "/generate", writer=mock.Mock(output_size=sent))

    async def handler(request: web.Request) -> web.StreamResponse:
        raise error

    return await middleware(request, handler)


def body(response: web.StreamResponse) -> object:
    assert isinstance(response, web.Response)
    assert isinstance(response.body, bytes)
    return json.loads(response.body)


async def test_an_error_of_ours_is_answered_as_json(caplog: pytest.LogCaptureFixture) -> None:
    response = await answer(Missing("no such thing"))
    assert response.status == 404
    assert response.content_type == "application/json"
    assert body(response) == {"error": "no such thing", "error_type": "not_found"}
    assert caplog.records == []  # a 4xx is the client's: not logged


async def test_an_unexpected_exception_is_a_generic_500_logged_once_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = await answer(KeyError("secret detail"))
    assert response.status == 500
    assert body(response) == {"error": "Internal server error", "error_type": "internal"}
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "POST /generate" in record.getMessage()
    assert record.exc_info is not None
    assert "secret detail" not in json.dumps(body(response))


async def test_a_5xx_of_ours_is_logged_once_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    await answer(Down("backend unreachable"))
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        "POST /generate answered 502 backend_unavailable: backend unreachable"
    )
    assert record.exc_info is None


async def test_a_5xx_that_says_when_to_come_back_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = await answer(Waking("loading", retry_after_s=1))
    assert response.headers["Retry-After"] == "1"
    [record] = caplog.records
    assert record.levelno == logging.WARNING


async def test_aiohttps_own_errors_become_ours() -> None:
    response = await answer(web.HTTPMethodNotAllowed("POST", ["GET", "HEAD"]))
    assert response.status == 405
    assert set(response.headers["Allow"].split(",")) == {"GET", "HEAD"}
    assert body(response) == {
        "error": "/generate does not take POST: use "
        + response.headers["Allow"].replace(",", ", "),
        "error_type": "method_not_allowed",
    }


async def test_the_hook_sees_every_error_answered() -> None:
    seen: list[ServiceError] = []
    await answer(Missing("x"), seen=seen)
    await answer(web.HTTPRequestEntityTooLarge(max_size=1024, actual_size=2048), seen=seen)
    await answer(RuntimeError("boom"), seen=seen)
    assert [(e.status, e.error_type) for e in seen] == [
        (404, "not_found"),
        (413, "payload_too_large"),
        (500, "internal"),
    ]


async def test_a_redirect_is_not_an_error() -> None:
    with pytest.raises(web.HTTPFound):
        await answer(web.HTTPFound("/elsewhere"))


@pytest.mark.parametrize("error", [Missing("x"), RuntimeError("boom"), web.HTTPNotFound()])
async def test_an_error_after_the_answer_has_started_goes_on_to_aiohttp(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[ServiceError] = []
    with pytest.raises(type(error)):
        await answer(error, sent=120, seen=seen)
    assert seen == []
    assert caplog.records == []  # aiohttp logs it, once


async def test_a_hook_that_fails_still_lets_the_answer_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(request: web.Request, error: ServiceError) -> None:
        raise KeyError("a metrics label it did not expect")

    middleware = error_middleware(LOG, body_limit=1024, on_error=broken)
    request = make_mocked_request("POST", "/generate", writer=mock.Mock(output_size=0))

    async def handler(request: web.Request) -> web.StreamResponse:
        raise Missing("no such thing")

    with caplog.at_level(logging.ERROR, logger=LOG.name):
        response = await middleware(request, handler)
    assert response.status == 404
    assert body(response) == {"error": "no such thing", "error_type": "not_found"}
    assert [r.getMessage() for r in caplog.records] == ["the error hook failed on POST /generate"]
