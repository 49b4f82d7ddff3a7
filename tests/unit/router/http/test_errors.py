"""The error middleware: what each kind of error becomes on the wire."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from router.errors import EndpointNotFound, Overloaded, RouterError
from router.http.errors import error_middleware
from router.http.state import SETTINGS
from router.settings import RouterSettings


async def answer(error: Exception, tmp_path: Path) -> web.Response:
    app = web.Application()
    app[SETTINGS] = RouterSettings(state_dir=tmp_path, max_body_bytes=1024)

    async def handler(request: web.Request) -> web.StreamResponse:
        raise error

    response = await error_middleware(make_mocked_request("POST", "/route/", app=app), handler)
    assert isinstance(response, web.Response)
    return response


def body(response: web.Response) -> object:
    assert isinstance(response.body, bytes)
    return json.loads(response.body)


async def test_a_router_error_answers_its_status_and_type(tmp_path: Path) -> None:
    response = await answer(EndpointNotFound("no endpoint named 'x'"), tmp_path)
    assert response.status == 404
    assert response.content_type == "application/json"
    assert body(response) == {"error": "no endpoint named 'x'", "error_type": "endpoint_not_found"}
    assert "Retry-After" not in response.headers


@pytest.mark.parametrize(("retry_after_s", "header"), [(0.2, "1"), (2.6, "3"), (30.0, "30")])
async def test_retry_after_is_whole_seconds_and_at_least_one(
    tmp_path: Path, retry_after_s: float, header: str
) -> None:
    response = await answer(Overloaded("too many waiting", retry_after_s=retry_after_s), tmp_path)
    assert response.status == 429
    assert response.headers["Retry-After"] == header


async def test_the_base_error_is_an_internal_error(tmp_path: Path) -> None:
    response = await answer(RouterError("something broke"), tmp_path)
    assert response.status == 500
    assert body(response) == {"error": "something broke", "error_type": "internal"}


async def test_a_body_over_the_limit_names_the_limit(tmp_path: Path) -> None:
    too_large = web.HTTPRequestEntityTooLarge(max_size=1024, actual_size=2048)
    response = await answer(too_large, tmp_path)
    assert response.status == 413
    assert body(response) == {
        "error": "request body is over the 1024-byte limit",
        "error_type": "too_large",
    }


async def test_other_http_errors_keep_their_status_and_headers_that_apply(tmp_path: Path) -> None:
    response = await answer(web.HTTPMethodNotAllowed("PUT", ["GET", "POST"]), tmp_path)
    assert response.status == 405
    assert body(response) == {"error": "Method Not Allowed", "error_type": "http"}
    assert set(response.headers["Allow"].split(",")) == {"GET", "POST"}
    assert response.content_type == "application/json"


async def test_a_redirect_is_not_an_error(tmp_path: Path) -> None:
    with pytest.raises(web.HTTPFound):
        await answer(web.HTTPFound("/elsewhere"), tmp_path)
