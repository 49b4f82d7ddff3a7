"""The /route/ body: any JSON either becomes a request within its bounds or a ValidationError."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from protocol import MAX_COST, RouteRequest

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=8,
)
field_names = st.sampled_from(
    ["endpoint", "cost", "request_idx", "avoid", "session", "api_key", "extra"]
)


@given(st.dictionaries(field_names, json_values) | json_values)
def test_any_body_is_a_bounded_request_or_a_validation_error(body: Any) -> None:
    try:
        request = RouteRequest.model_validate(body)
    except ValidationError:
        return
    assert 1 <= len(request.endpoint) <= 256
    assert math.isfinite(request.cost)
    assert 0 < request.cost <= MAX_COST
    assert request.request_idx is None or 0 <= request.request_idx < 2**63
    assert len(request.avoid) <= 64
    assert request.session is None or 1 <= len(request.session) <= 256
