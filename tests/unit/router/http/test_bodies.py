"""`/route/`'s body: the fast check agrees with `RouteRequest` on every body, good or bad."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import RouteRequest
from router.errors import BadRequest, InvalidRequest
from router.http.bodies import RouteArgs, parse_json, parse_model, route_args


def by_the_model(body: Any) -> RouteArgs | str:
    try:
        model = parse_model(RouteRequest, body)
    except InvalidRequest as exc:
        return exc.message
    return RouteArgs(
        model.endpoint, model.cost, model.request_idx, model.api_key, model.avoid, model.session
    )


def by_route_args(body: Any) -> RouteArgs | str:
    try:
        return route_args(body)
    except InvalidRequest as exc:
        return exc.message


texts = st.text(max_size=3) | st.text(min_size=250, max_size=260)
anything = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | texts
    | st.lists(texts | st.integers(), max_size=3)
    | st.lists(st.just("http://w:3000"), min_size=60, max_size=70)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)
good = {
    "endpoint": st.text(min_size=1, max_size=8),
    "cost": st.integers(min_value=1, max_value=1_000_000) | st.floats(0.001, 1_000_000.0),
    "request_idx": st.none() | st.integers(min_value=0, max_value=2**63 - 1),
    "api_key": st.none() | st.text(max_size=8),
    "avoid": st.lists(st.text(max_size=8), max_size=3),
    "session": st.none() | st.text(min_size=1, max_size=8),
}
bodies = st.fixed_dictionaries(
    {}, optional={name: value | anything for name, value in good.items()}
)


@given(bodies | anything)
def test_route_args_accept_and_refuse_exactly_what_the_model_does(body: Any) -> None:
    assert by_route_args(body) == by_the_model(body)


@given(st.fixed_dictionaries(good))
def test_well_formed_bodies_pass(body: dict[str, Any]) -> None:
    args = route_args(body)
    assert args == by_the_model(body)
    assert type(args.cost) is float


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"endpoint": "e", "cost": True}, "cost"),
        ({"endpoint": "e", "cost": "100"}, "cost"),
        ({"endpoint": "e", "cost": float("nan")}, "cost"),
        ({"endpoint": "e", "cost": 0}, "cost"),
        ({"endpoint": "e", "cost": 1e7}, "cost"),
        ({"endpoint": "", "cost": 1}, "endpoint"),
        ({"cost": 1}, "endpoint"),
        ({"endpoint": "e", "request_idx": -1}, "request_idx"),
        ({"endpoint": "e", "request_idx": True}, "request_idx"),
        ({"endpoint": "e", "avoid": "http://w"}, "avoid"),
        ({"endpoint": "e", "avoid": ["u"] * 65}, "avoid"),
        ({"endpoint": "e", "session": ""}, "session"),
        ({"endpoint": "e", "api_key": 5}, "api_key"),
    ],
)
def test_a_bad_field_is_a_422_that_names_it(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest, match=field):
        route_args(body)


@pytest.mark.parametrize(
    "raw",
    [
        b'"\\ud800"',
        b'{"inputs": ["ok", {"x": "a\\udfffb"}], "cost": NaN}',
        b'{"\\udc00": 1, "cost": Infinity}',
    ],
)
def test_a_lone_surrogate_escape_is_not_json(raw: bytes) -> None:
    with pytest.raises(BadRequest, match="surrogate"):
        parse_json(raw)


def test_a_paired_surrogate_escape_is_text() -> None:
    assert parse_json(b'{"s": "\\ud83d\\ude00", "cost": NaN}')["s"] == "\U0001f600"
