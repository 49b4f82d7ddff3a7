"""The request body parser: orjson where it gives what `json.loads` gives, `json` elsewhere."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyworker.envelope import encode_payload, read_json
from pyworker.errors import BadRequest

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_parses_to_what_json_loads_gives(value: Any) -> None:
    raw = json.dumps({"payload": value}, ensure_ascii=False).encode("utf-8")
    parsed, _ = read_json(raw)
    assert parsed == json.loads(raw)
    assert [type(x) for x in _leaves(parsed)] == [type(x) for x in _leaves(json.loads(raw))]


@given(json_values)
def test_payload_survives_the_round_trip_to_the_backend(value: Any) -> None:
    raw = json.dumps({"v": value}).encode()
    parsed, strict = read_json(raw)
    assert json.loads(encode_payload(parsed, strict)) == json.loads(raw)


def test_an_integer_beyond_64_bits_stays_an_exact_integer() -> None:
    parsed, strict = read_json(b'{"parameters":{"max_new_tokens":123456789012345678901234567}}')
    assert parsed["parameters"]["max_new_tokens"] == 123456789012345678901234567
    assert not strict


def test_what_only_python_json_reads_is_still_read_and_kept() -> None:
    parsed, strict = read_json(b'{"x": NaN, "s": "\\ud800"}')
    assert math.isnan(parsed["x"])
    assert parsed["s"] == "\ud800"
    assert not strict
    assert encode_payload({"x": parsed["x"]}, strict) == b'{"x":NaN}'
    relayed = encode_payload(parsed, strict)  # the surrogate has no UTF-8 form: kept escaped
    assert b'"s":"\\ud800"' in relayed
    assert json.loads(relayed)["s"] == "\ud800"


def test_text_beyond_ascii_in_a_body_only_json_reads_is_relayed_unchanged() -> None:
    parsed, strict = read_json('{"x": NaN, "s": "café 💡"}'.encode())
    assert not strict
    assert json.loads(encode_payload(parsed, strict))["s"] == "café 💡"


@pytest.mark.parametrize(
    "raw", [b"", b"{", b'{"a":}', b"\xff\xfe\x00", b"[" * 100_000, b"[" * 5000 + b"]" * 5000]
)
def test_invalid_json_is_a_bad_request(raw: bytes) -> None:
    with pytest.raises(BadRequest, match="not valid JSON"):
        read_json(raw)


@pytest.mark.parametrize("strict", [True, False])
def test_a_payload_nested_too_deeply_to_write_is_a_bad_request(strict: bool) -> None:
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(BadRequest, match="nested too deeply"):
        encode_payload({"x": deep}, strict)


def test_a_payload_deeper_than_orjson_writes_is_written_by_json() -> None:
    raw = b'{"x":' + b"[" * 300 + b"]" * 300 + b"}"
    parsed, strict = read_json(raw)
    assert strict
    assert encode_payload(parsed, strict) == raw


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]
