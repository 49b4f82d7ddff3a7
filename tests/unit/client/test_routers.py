"""Several routers: which URLs, in what order, and which failures go on to the next one."""

from __future__ import annotations

import pytest

from client.routers import RouterRing, parse_router_urls, router_failed


def test_urls_come_as_one_a_comma_list_or_a_sequence_of_either() -> None:
    assert parse_router_urls("http://a:1/") == ("http://a:1",)
    assert parse_router_urls(" http://a:1 , https://b:2/,") == ("http://a:1", "https://b:2")
    assert parse_router_urls(["http://a:1,http://b:2", "http://a:1", "http://c:3"]) == (
        "http://a:1",
        "http://b:2",
        "http://c:3",
    )


@pytest.mark.parametrize("value", ["", " , ", [], "ftp://a", ["http://a:1", "a:2"]])
def test_no_url_or_one_not_http_is_refused(value: str | list[str]) -> None:
    with pytest.raises(ValueError, match=r"no router URL|must be an http"):
        parse_router_urls(value)


@pytest.mark.parametrize(
    ("status", "fails_over"),
    [
        *[(None, True), (500, True), (502, True), (503, True), (504, True)],
        *[(200, False), (400, False), (401, False), (404, False), (422, False), (429, False)],
    ],
)
def test_only_no_answer_or_a_5xx_goes_on_to_the_next_router(
    status: int | None, fails_over: bool
) -> None:
    assert router_failed(status) is fails_over


def test_the_router_that_answered_last_is_asked_first() -> None:
    ring = RouterRing(["http://a", "http://b", "http://c"])
    assert (ring.preferred, ring.order()) == ("http://a", ["http://a", "http://b", "http://c"])
    ring.answered("http://c")
    assert (ring.preferred, ring.order()) == ("http://c", ["http://c", "http://a", "http://b"])
    ring.answered("http://a")
    assert ring.order() == ["http://a", "http://b", "http://c"]
